"""The pure domain core: plain Python, no I/O, no frameworks."""
