"""srcore plugin `srcnn`."""
