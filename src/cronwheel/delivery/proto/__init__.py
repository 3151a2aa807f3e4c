"""Generated stubs for the gRPC callback contract; regenerate with scripts/gen_proto.sh."""
