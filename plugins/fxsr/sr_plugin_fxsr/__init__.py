"""srcore plugin `fxsr`."""
