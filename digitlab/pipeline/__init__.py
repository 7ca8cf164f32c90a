"""The results table and the notebook runner."""
