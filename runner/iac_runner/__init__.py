"""iac-runner: the PID 1 supervisor baked into every iac-wrapper app image."""

__version__ = "0.1.0"
