#!/usr/bin/env bash
# The project's main job: set up .venv if needed, then train the demo
# detector (Mask R-CNN, E-SpikeFormer T, spiking FPN and heads) on the
# embedded shapes set and evaluate it with MMDetection's CocoMetric.
# Extra arguments go to tools/train.py (--work-dir, --cfg-options, ...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/ensure_env.sh"
cd "$ROOT"
exec .venv/bin/python tools/train.py \
    configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py "$@"
