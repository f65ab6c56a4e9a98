"""OS1 hub server."""

__version__ = "0.1.0"
