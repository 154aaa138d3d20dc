#!/usr/bin/env bash
# Test the GPU check's preparation on this (networked, CPU) machine:
#   1. tools/gpu/prepare_wheels.sh fills a folder for this machine's Python;
#   2. a fresh virtual environment stands in for the GPU image: it sees only
#      torch, torchvision, triton, numpy and the packages the GPU image holds
#      (linked from this project's .venv, no second download), and none of
#      the OpenMMLab libraries or their needs;
#   3. tools/gpu/check.sh runs there: pip install --no-index from the folder,
#      the import check (import sdt3_mm included), the CUDA tier (collected,
#      skipped without a GPU), the Triton tests under the interpreter, and the
#      benchmarks' CPU fallback.
# It prints the folder's size and each part's time; exits non-zero if any
# step failed.
#
#   tools/gpu/test_prepare.sh            # uses /tmp/sdt3_mm_prepare_test
#   WORK=/some/dir tools/gpu/test_prepare.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SOURCE_VENV="${SOURCE_VENV:-$ROOT/.venv}"
WORK="${WORK:-/tmp/sdt3_mm_prepare_test}"
VENV_PY="$SOURCE_VENV/bin/python"
BASE_PY=$("$VENV_PY" -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))')
PY_VERSION=$("$VENV_PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

rm -rf "$WORK"
mkdir -p "$WORK"

echo "=== prepare_wheels.sh for Python $PY_VERSION"
t0=$(date +%s)
PYTHON="$VENV_PY" PY_VERSION="$PY_VERSION" "$ROOT/tools/gpu/prepare_wheels.sh" "$WORK/whl" \
    | grep -v -e '━' -e '^Collecting' -e '^  Downloading' -e '^  File was already'
echo "prepared in $(($(date +%s) - t0))s"

echo "=== a fresh venv that sees only the GPU image's packages"
"$BASE_PY" -m venv "$WORK/venv"
# The GPU image's packages (python3 -m pip list there) that this project's
# .venv also holds. Neither an OpenMMLab library nor any of the folder's
# wheels is among them.
IMAGE_DISTS=(
    torch torchvision triton numpy sympy mpmath networkx jinja2 markupsafe
    filelock fsspec typing-extensions cuda-bindings cuda-pathfinder
    cuda-toolkit pillow matplotlib contourpy cycler fonttools kiwisolver
    pyparsing python-dateutil six packaging scipy opencv-python
    opencv-python-headless pyyaml rich markdown-it-py mdurl pygments tqdm
    einops regex click markdown zipp pytest iniconfig pluggy pytest-xdist
    execnet onnx onnxruntime onnxscript onnx-ir protobuf ml-dtypes
    flatbuffers psutil tabulate
)
"$VENV_PY" - "$WORK/image" "${IMAGE_DISTS[@]}" <<'EOF'
"""Link the top-level entries (packages, modules, .dist-info) of the named
distributions, and of every nvidia-* one (torch's CUDA libraries), into a
folder."""
import importlib.metadata as metadata
import os
import sys

folder, names = sys.argv[1], set(sys.argv[2:])
os.makedirs(folder)
linked = set()
for dist in metadata.distributions():
    name = dist.metadata['Name'].lower().replace('_', '-')
    if name not in names and not name.startswith('nvidia-'):
        continue
    for file in dist.files or ():
        top = file.parts[0]
        if top == '..' or top in linked or top.startswith('__'):
            continue
        source = dist.locate_file(top)
        if os.path.exists(source):
            os.symlink(source, os.path.join(folder, top))
            linked.add(top)
print(f'linked {len(linked)} entries into {folder}')
EOF
SITE_PACKAGES=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$WORK/image" >"$SITE_PACKAGES/gpu_image.pth"
if "$WORK/venv/bin/python" -c 'import mmengine' 2>/dev/null; then
    echo "test_prepare: the fresh venv already imports mmengine" >&2
    exit 1
fi

echo "=== tools/gpu/check.sh in the fresh venv"
t0=$(date +%s)
status=0
PYTHON="$WORK/venv/bin/python" WHEELS="$WORK/whl" SITE="$WORK/site" \
    CHECK_OUT="$WORK/check" "$ROOT/tools/gpu/check.sh" || status=$?
echo "check.sh: exit $status after $(($(date +%s) - t0))s"
echo "wheel folder: $(ls "$WORK"/whl/*.whl | wc -l) wheels, $(du -sk "$WORK/whl" | cut -f1) KiB;" \
     "installed: $(du -sk "$WORK/site" | cut -f1) KiB"
exit "$status"
