#!/usr/bin/env bash
# The main job: build, evaluate and package a medical model end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/medllm run configs/demo.yaml "$@"
