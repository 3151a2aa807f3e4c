"""HTTP: the native /v1 API, the dialects of the five source schedulers, health and metrics."""
