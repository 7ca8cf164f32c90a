"""Data sources: Mini MNIST, the MNIST family, noise, and in-memory batching."""
