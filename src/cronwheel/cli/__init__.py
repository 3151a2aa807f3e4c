"""The `cronwheel` command."""
