"""The version of ctcurate (one place)."""

__version__ = "0.1.0"
