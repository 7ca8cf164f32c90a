"""The networks: Mini MNIST MLP and CNN, dense networks, the CNN family, NumPy models."""
