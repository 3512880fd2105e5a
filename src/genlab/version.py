"""genlab's version, on the lowest floor: config.json and checkpoints record it."""
__version__ = "0.1.0"
