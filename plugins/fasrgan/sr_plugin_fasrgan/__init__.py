"""srcore plugin `fasrgan`."""
