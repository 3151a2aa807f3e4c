#!/usr/bin/env sh
# Regenerate the Python stubs for the gRPC contracts: cronwheel's own callback, and the
# delay-job dialect's callback and management services.
# The include root is `src`, so the generated modules import each other by their full
# package path (cronwheel.delivery.proto.callback_pb2).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m grpc_tools.protoc -I src \
    --python_out=src --grpc_python_out=src --pyi_out=src \
    src/cronwheel/delivery/proto/callback.proto \
    src/cronwheel/delivery/proto/delayjob_callback.proto \
    src/cronwheel/delivery/proto/delayjob_job.proto
