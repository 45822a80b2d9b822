"""srcore plugin `srrescgan`."""
