"""digitlab: reproducible handwritten-digit experiments."""

__version__ = "0.1.0"
