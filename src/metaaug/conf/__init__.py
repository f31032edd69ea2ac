"""Hydra config groups of metaaug (shipped with the package)."""
