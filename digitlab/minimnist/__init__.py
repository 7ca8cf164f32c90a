"""Mini MNIST: procedural 72-pixel digits, their CSV tables, the MLP and the ladder."""
