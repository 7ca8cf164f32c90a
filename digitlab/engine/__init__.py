"""The one way a torch model is trained, evaluated, cross-validated and saved."""
