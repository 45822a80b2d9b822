"""srcore plugin bridging spandrel: see plugin.py and README.md."""
