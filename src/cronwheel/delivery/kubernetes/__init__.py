"""Running runs as Kubernetes Jobs: the gateway contract, its lightkube implementation, an
in-memory cluster for tests, the configured clusters and the transport."""
