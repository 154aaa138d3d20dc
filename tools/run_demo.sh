#!/usr/bin/env bash
# The project's main job: set up .venv if needed, then run the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/ensure_env.sh"
cd "$ROOT"
exec .venv/bin/python demo/backbone_demo.py "$@"
