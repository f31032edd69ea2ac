"""Hydra config groups of metaaug (shipped with the package). Importing this package (as
`initialize_config_module("metaaug.conf")` does) registers the typed schemas the YAML files
name in their defaults lists."""

from metaaug.config import schema  # noqa: F401
