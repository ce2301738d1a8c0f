"""greeter: a tiny console-script package (src layout)."""

__version__ = "0.1.0"
