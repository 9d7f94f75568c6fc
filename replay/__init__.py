"""The replay application: CLI, session runner, live daemon."""

__version__ = "0.1.0"
