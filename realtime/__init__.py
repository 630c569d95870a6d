"""Bind-Your-Avatar Live: the real-time engine (model, audio front end, streaming generator, outputs, CLI)."""

__version__ = "0.1.0"
