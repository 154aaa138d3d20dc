#!/usr/bin/env bash
# The one-command GPU check, for a bare GPU machine whose Python already has
# torch, triton and numpy (and no network). From the repo root:
#
#   tools/gpu/check.sh
#
# after tools/gpu/prepare_wheels.sh filled .whl/ on a networked machine
# (the working tree, .whl/ included, copied to the GPU machine). In turn, each
# part under its own time limit, the whole under 8 minutes:
#   1. install .whl/*.whl with pip --no-index --no-deps into a target folder
#      put on PYTHONPATH (with the working tree, which provides sdt3_mm);
#   2. check that every needed module imports (naming what is missing) and
#      print the environment: GPU, torch, CUDA, triton, mmcv's ops or not;
#   3. the CUDA test tier: pytest -m cuda tests/test_cuda;
#   4. the Triton tests: pytest -k triton, over the test files naming triton;
#   5. the GPU benchmark (tools/analysis_tools/benchmark.py and
#      benchmark_neuron.py with --markdown): fp32, fp16, bf16, the naive and
#      lif baselines, the fused against the eager SFA neuron;
# then prints the benchmark's rows, ready for docs/en/benchmark.md, and a
# summary. It exits 1 if any part failed or ran out of time, after running
# the others. Without a GPU the benchmark falls back to one small CPU run of
# each tool (the check of the preparation, tools/gpu/test_prepare.sh).
#
# The mmcv of the folder has no compiled ops (mmcv-lite): mmcv.ops does not
# import, and with it neither mmdet.models (its heads and necks import
# mmcv.ops) nor mmseg.models (mmseg.utils imports mmcv.ops.point_sample).
# sdt3_mm then imports without its detection and segmentation parts, which
# raise an error naming the cause when a config asks for them; the
# classification backbone, neurons, layers, MMPretrain classifiers and the
# benchmarks run. Detection and segmentation on a GPU need an mmcv built with
# its ops for the GPU's torch (tools/ensure_env.sh builds one: FORCE_CUDA=1).
#
# Environment:
#   PYTHON     the Python that has torch (default python3)
#   WHEELS     the wheel folder (default <repo>/.whl)
#   SITE       where the wheels are installed (default /tmp/sdt3_mm_site)
#   CHECK_OUT  where logs and the rows are written (default /tmp/sdt3_mm_gpu_check)
#   LIMIT_INSTALL, LIMIT_ENV, LIMIT_TIER, LIMIT_TRITON, LIMIT_BENCH: each
#              part's time limit in seconds (45, 45, 180, 45, 150: 7 min 45 s
#              in all); the benchmark commands share LIMIT_BENCH, in order of
#              importance, and those that no longer fit are reported as such.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-$ROOT/.whl}"
SITE="${SITE:-/tmp/sdt3_mm_site}"
CHECK_OUT="${CHECK_OUT:-/tmp/sdt3_mm_gpu_check}"
LIMIT_INSTALL="${LIMIT_INSTALL:-45}"
LIMIT_ENV="${LIMIT_ENV:-45}"
LIMIT_TIER="${LIMIT_TIER:-180}"
LIMIT_TRITON="${LIMIT_TRITON:-45}"
LIMIT_BENCH="${LIMIT_BENCH:-150}"
mkdir -p "$CHECK_OUT"
ROWS="$CHECK_OUT/benchmark_rows.md"
: >"$ROWS"
SUMMARY=()
FAILED=0
START=$(date +%s)

# part NAME LIMIT CMD...: run CMD (a program, or a function of this script
# that keeps to LIMIT itself) under the time limit, its output shown and kept
# in $CHECK_OUT/NAME.log; record ok / failed / timed out.
part() {
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name (limit ${limit}s)"
    local t0 rc
    t0=$(date +%s)
    if declare -F "$1" >/dev/null; then
        "$@" 2>&1 | tee "$CHECK_OUT/$name.log"
    else
        timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$CHECK_OUT/$name.log"
    fi
    rc=${PIPESTATUS[0]}
    local took=$(($(date +%s) - t0))
    local state="ok"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        state="TIMED OUT after ${limit}s"
    elif [ "$rc" -ne 0 ]; then
        state="FAILED (exit $rc)"
    fi
    [ "$state" = ok ] || FAILED=1
    SUMMARY+=("$(printf '%-14s %-24s %4ss' "$name" "$state" "$took")")
    return 0
}

install_wheels() {
    shopt -s nullglob
    local wheels=("$WHEELS"/*.whl)
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "no wheels in $WHEELS: run tools/gpu/prepare_wheels.sh on a" \
             "machine with network access first (see docs/en/advanced_guides/gpu_check.md)"
        return 1
    fi
    echo "installing ${#wheels[@]} wheels from $WHEELS into $SITE"
    timeout --kill-after=10 "$LIMIT_INSTALL" \
        "$PYTHON" -m pip install -q --disable-pip-version-check --no-index \
        --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "${wheels[@]}"
}

part install "$LIMIT_INSTALL" install_wheels
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
part environment "$LIMIT_ENV" "$PYTHON" tools/gpu/env_report.py

HAS_CUDA=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
PYTEST=("$PYTHON" -m pytest -q -p no:cacheprovider -rs)
# Only the tier's folder and the files that name Triton are collected: other
# test modules import mmdet.models / mmseg.models, which need mmcv's ops.
part cuda-tier "$LIMIT_TIER" "${PYTEST[@]}" -m cuda tests/test_cuda
mapfile -t TRITON_FILES < <(grep -rl --include='test_*.py' triton tests)
if [ ${#TRITON_FILES[@]} -eq 0 ]; then
    part triton-tests "$LIMIT_TRITON" sh -c 'echo "no test file under tests/ names triton"; exit 1'
elif [ "$HAS_CUDA" = 1 ]; then
    part triton-tests "$LIMIT_TRITON" "${PYTEST[@]}" -k triton "${TRITON_FILES[@]}"
else
    # No GPU: the kernels run under Triton's interpreter.
    part triton-tests "$LIMIT_TRITON" env TRITON_INTERPRET=1 \
        "${PYTEST[@]}" -k triton "${TRITON_FILES[@]}"
fi

# The benchmark commands, one per line; each appends its markdown rows.
B="tools/analysis_tools/benchmark.py"
N="tools/analysis_tools/benchmark_neuron.py"
if [ "$HAS_CUDA" = 1 ]; then
    BENCH=(
        "$N --device cuda --repeats 20"
        "$B s --size 224 224 --batch 64 --device cuda --compare ours ours:fp16"
        "$B l --size 800 1333 --batch 2 --device cuda --compare ours:fp16 naive:fp16 --modes train"
        "$B l --size 800 1333 --batch 2 --device cuda --compare ours ours:fp16 --modes train"
        "$B s --size 224 224 --batch 64 --device cuda --compare ours ours:bf16"
        "$B s --size 224 224 --batch 64 --device cuda --compare eager ours --modes train"
        "$B s --size 224 224 --batch 64 --device cuda --compare ours lif --modes train"
    )
else
    BENCH=(
        "$N --device cpu --shape 4 64 32 32 --dtypes fp32 --warmup 1 --repeats 2"
        "$B t --size 32 32 --batch 1 --device cpu --warmup 0 --repeats 1 --compare ours ours:bf16 --modes infer"
    )
fi
run_benchmarks() {
    local deadline=$(($(date +%s) + LIMIT_BENCH)) rc=0 cmd left this
    for cmd in "${BENCH[@]}"; do
        left=$((deadline - $(date +%s)))
        if [ "$left" -le 5 ]; then
            echo "no time left for: $cmd"
            rc=1
            continue
        fi
        echo "--- $cmd"
        # shellcheck disable=SC2086  # the command's words
        timeout --kill-after=5 "$left" "$PYTHON" $cmd --markdown \
            >"$CHECK_OUT/bench.out" 2>&1
        this=$?
        cat "$CHECK_OUT/bench.out"
        if [ "$this" -ne 0 ]; then
            [ "$this" -eq 124 ] && echo "(stopped: the benchmark's ${LIMIT_BENCH}s were spent)"
            rc=1
            continue
        fi
        grep '^|' "$CHECK_OUT/bench.out" >>"$ROWS"
        echo >>"$ROWS"
    done
    return "$rc"
}
part benchmark "$LIMIT_BENCH" run_benchmarks

echo
echo "=== rows for docs/en/benchmark.md (also in $ROWS)"
cat "$ROWS"
echo "=== summary ($(($(date +%s) - START))s in all; logs in $CHECK_OUT)"
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
