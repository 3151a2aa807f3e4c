"""Adapters for the five source schedulers' APIs; each calls the same services as /v1."""
