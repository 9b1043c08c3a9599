#!/usr/bin/env bash
# Installs what tests/channels/smtp_sink.py needs (Python's aiosmtpd) into target/test-venv.
# Idempotent and quiet: does nothing when it is already there. Called by scripts/test, and by
# the channel tests themselves when the venv is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/test-venv
if "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  exit 0
fi
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
  # Debian splits venv out of python3.
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq python3-venv >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-venv >/dev/null
    }
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd
"$venv/bin/python" -c 'import aiosmtpd'
