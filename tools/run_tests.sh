#!/usr/bin/env bash
# The test suite: set up .venv if needed, then run pytest on two workers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/ensure_env.sh"
cd "$ROOT"
# yapf (imported by mmengine's Config) rewrites its grammar cache in
# ~/.cache/YAPF whenever the cache is older than a fresh install's grammar
# files; two workers doing that at once can read a half-written pickle.
.venv/bin/python -c "import yapf"
exec .venv/bin/python -m pytest -n 2 "$@"
