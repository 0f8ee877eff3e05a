"""sensorium: published perception systems as tested, fast PyTorch software."""

__version__ = "0.1.0"
