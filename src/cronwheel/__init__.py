"""cronwheel: a self-hosted job scheduling service."""

__version__ = "0.1.0"
