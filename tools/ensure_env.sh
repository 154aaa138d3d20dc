#!/usr/bin/env bash
# Create (or reuse) the project-local virtual environment .venv with the pinned
# OpenMMLab stack. Each finished step leaves a stamp, so a second run is a no-op.
# Source it (`. tools/ensure_env.sh`) or run it; afterwards .venv/bin/python is ready.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMPS="$VENV/.sdt3_mm_stamps"
PYTHON="${PYTHON:-python3.11}"

log() { echo "[ensure_env] $*" >&2; }

step_done() { [ -f "$STAMPS/$1" ]; }
mark_done() { touch "$STAMPS/$1"; }

if [ ! -x "$PY" ]; then
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
PIP=("$PY" -m pip install --disable-pip-version-check)

# Build tools stay pinned at runtime too: setuptools 82 dropped pkg_resources,
# which mmcv's setup.py and mmengine's `mmdet::` config lookup import.
if ! step_done build-tools; then
    log "installing build tools"
    "${PIP[@]}" --upgrade pip "setuptools>=77.0.3,<82" wheel ninja
    mark_done build-tools
fi

# `===` is an exact string match: it takes PyPI's CUDA builds (which also run on
# CPU) and skips a local `+cpu` wheel, next to which torchvision cannot import.
if ! step_done torch; then
    log "installing torch 2.13.0 and torchvision 0.28.0"
    "${PIP[@]}" "torch===2.13.0" "torchvision===0.28.0" "numpy<2"
    mark_done torch
fi

# mmcv 2.1.0 ships only as source. Its CUDA ops compile only when asked for
# (FORCE_CUDA=1) or when a GPU is visible; a CPU-only mmcv breaks detection on
# a GPU, so with a GPU we rebuild instead of reusing a cached CPU wheel.
if ! step_done mmcv; then
    if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        log "GPU visible: building mmcv 2.1.0 with CUDA ops (this takes a while)"
        FORCE_CUDA=1 MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation --no-cache-dir "mmcv==2.1.0" "numpy<2"
    else
        # A wheel built on this kind of machine may lie in ../shared/wheels;
        # pip prefers it to the source build, and without it builds as before.
        FIND_LINKS=()
        if [ -d "$ROOT/../shared/wheels" ]; then
            FIND_LINKS=(--find-links "$ROOT/../shared/wheels")
        fi
        log "building mmcv 2.1.0 (CPU ops; about 12 minutes on 2 cores, cached by pip afterwards)"
        MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation "${FIND_LINKS[@]}" "mmcv==2.1.0" "numpy<2"
    fi
    mark_done mmcv
fi

if ! step_done openmmlab; then
    log "installing mmengine, mmpretrain, mmdet, mmsegmentation"
    "${PIP[@]}" "mmengine==0.10.7" "mmpretrain==1.2.0" "mmdet==3.3.0" \
        "mmsegmentation==1.2.2" ftfy regex "setuptools>=77.0.3,<82" "numpy<2"
    mark_done openmmlab
fi

# ONNX export and CPU inference. torch's default exporter (dynamo=True) needs
# onnxscript (and its onnx-ir); dynamo=False needs only onnx. These wheels run
# on numpy 1.x; "numpy<2" keeps pip from upgrading it. An existing venv lacks
# the stamp, so it runs this step once.
if ! step_done onnx; then
    log "installing onnx, onnxruntime (CPU) and onnxscript"
    "${PIP[@]}" "onnx==1.23.2" "onnxruntime==1.32.0" "onnxscript==0.7.2" \
        "onnx-ir==1.1.0" "numpy<2"
    mark_done onnx
fi

# What the libraries' own analysis tools import: psutil (mmdet's
# benchmark.py) and seaborn (analyze_logs.py). A plain `pip install
# seaborn` would pull pandas and numpy 2, which the compiled stack does not
# run on; "numpy<2" in the same command keeps numpy 1.x.
if ! step_done analysis; then
    log "installing psutil and seaborn (the libraries' analysis tools)"
    "${PIP[@]}" "psutil==7.2.2" "seaborn==0.13.2" "pandas==3.0.6" "numpy<2"
    mark_done analysis
fi

# tonic (the neuromorphic data library): an optional extra (`.[events]`).
# Our event transforms are numpy only; tonic is what the tests compare the
# binning against and what reads DVS Gesture, N-MNIST, ... for
# tools/dataset_converters/tonic_to_npz.py. It pulls h5py, scipy, librosa,
# numba and scikit-learn (+300 MB, 10-30 s) and, unpinned, setuptools 84
# and numpy 2, which the stack does not run on: pinned in the same command.
if ! step_done events; then
    log "installing tonic 1.7.0 (event-camera data sets; optional extra)"
    "${PIP[@]}" "tonic==1.7.0" "setuptools>=77.0.3,<82" "numpy<2"
    mark_done events
fi

# The independent op counter the energy tests compare with: SpikingJelly
# 2.0's SynOpCounter / MACCounter (tests/test_analysis/
# test_crosscheck_spikingjelly.py), a test-only extra (`.[crosscheck]`).
# Its declared dependencies (torchaudio 2.11.1, built for torch 2.11,
# tensorboard, grpcio, SciencePlots: 21 MB of wheels) serve its data sets
# and training tools; its op counter imports only loguru. So it is installed
# without them (+12 MB, 1 s). syops 0.0.5, the other counter, imports names
# SpikingJelly 2.0 no longer has (MultiStepIFNode) and an undeclared
# `progress`, so it does not run with any SpikingJelly pip would pick.
if ! step_done crosscheck; then
    log "installing spikingjelly 2.0.0 (the tests' independent op counter)"
    "${PIP[@]}" --no-deps "spikingjelly==2.0.0" "loguru==0.7.3"
    mark_done crosscheck
fi

# Editable, so the checkout is what runs; re-done when setup.cfg changes.
if [ ! -f "$STAMPS/package" ] || [ "$ROOT/setup.cfg" -nt "$STAMPS/package" ]; then
    log "installing sdt3_mm (editable) with test extras"
    "${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT"
    "${PIP[@]}" pytest pytest-xdist
    mark_done package
fi
