"""MNIST CNNs: the networks, named recipes, the variants study, the CNN project, NumPy models."""
