#!/usr/bin/env bash
# Run the whole test suite in the project virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MEDLLM_QUIET=1
exec .venv/bin/python -m pytest "$@"
