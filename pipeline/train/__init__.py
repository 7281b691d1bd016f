"""Training and evaluation of CNNs on dataset versions."""
