"""srcore plugin `gflmser`."""
