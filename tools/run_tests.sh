#!/usr/bin/env bash
# The test suite: set up .venv if needed, then run pytest on two workers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/ensure_env.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest -n 2 "$@"
