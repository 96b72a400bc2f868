"""The intercept (INV-002): the one path every operation takes."""
