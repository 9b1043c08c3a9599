#!/usr/bin/env bash
# Installs Segment's official Python SDK (segment-analytics-python) into target/test-venv, for
# the SDK test of tests/suite/daemon.rs. Idempotent and quiet, like
# tests/channels/install_sink.sh (which creates the venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/test-venv
if "$venv/bin/python" -c 'import segment.analytics' 2>/dev/null; then
  exit 0
fi
bash tests/channels/install_sink.sh
# `python -m pip`, not `bin/pip`: a copied venv keeps the old path in the pip script.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check segment-analytics-python
"$venv/bin/python" -c 'import segment.analytics'
