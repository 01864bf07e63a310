"""Parley: a self-hosted assistant over any model."""

__version__ = "0.1.0"
