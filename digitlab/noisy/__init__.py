"""Noisy MNIST: the saved n-MNIST style sets, the dense networks and the studies."""
