#!/usr/bin/env bash
# A JVM Spark Connect server with Delta on 127.0.0.1, for PHMX_ENGINE=connect (docs/scaling.md).
# Runs in the foreground until interrupted; prints SPARK_REMOTE=sc://127.0.0.1:<port> when ready.
# Its Python workers run this project's interpreter with the project on their path.
# Usage: scripts/spark-connect-server.sh [--port 15002] [--master local[2]] [--shuffle-partitions 8]
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory jvm
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m phmx.jvm connect-server "$@"
