#!/usr/bin/env bash
# Fill a folder (default .whl/ at the repo root) with the wheels that a bare
# GPU machine needs to run this project, for a target Python version. Run it on
# a machine with network access; tools/gpu/check.sh installs the folder on the
# GPU machine with `pip install --no-index --no-deps --target`.
#
#   tools/gpu/prepare_wheels.sh                    # Python 3.12 into .whl/
#   PY_VERSION=3.11 tools/gpu/prepare_wheels.sh /tmp/whl311
#
# The GPU machine is assumed to hold torch, torchvision, triton, numpy 2.x and
# the common scientific packages (matplotlib, scipy, opencv, pillow, pyyaml,
# rich, tqdm, einops, regex, click, markdown, zipp, packaging, six, pytest,
# onnx, onnxruntime). The folder adds what it lacks:
#   - the OpenMMLab libraries, pure Python;
#   - mmcv 2.1.0 without compiled ops: OpenMMLab's own `mmcv-lite` wheel, which
#     is mmcv's source built with MMCV_WITH_OPS=0 (it imports as `mmcv`;
#     `mmcv.ops` fails to import: no mmcv._ext). Building mmcv with ops needs
#     nvcc and 20+ minutes, and pip has no wheel of it for torch 2.11;
#   - their pure-Python needs, and the two binary ones (pycocotools, shapely)
#     built for the target Python; their manylinux wheels are built against
#     numpy 2 and run on numpy >= 1.26 as well;
#   - setuptools < 82, whose pkg_resources mmengine imports to find the
#     installed libraries' configs (`mmdet::...`); setuptools 82 dropped it.
# sdt3_mm itself is not in the folder: check.sh runs the working tree.
#
# Arguments and environment:
#   $1          the folder to fill (default: <repo>/.whl); its *.whl are
#               removed first, so that it holds one version of each package.
#   PY_VERSION  the target Python, major.minor (default 3.12).
#   PYTHON      the Python whose pip downloads (default python3); any version.
#   MAX_MB      the size the folder must stay under (default 60).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${1:-$ROOT/.whl}"
PY_VERSION="${PY_VERSION:-3.12}"
PYTHON="${PYTHON:-python3}"
MAX_MB="${MAX_MB:-60}"

if ! [[ "$PY_VERSION" =~ ^3\.[0-9]+$ ]]; then
    echo "prepare_wheels: PY_VERSION must be major.minor such as 3.12, got '$PY_VERSION'" >&2
    exit 2
fi

# Pure-Python wheels (py3-none-any): the libraries and what they import that
# the GPU image lacks. One pinned version each, the versions this project's
# CPU environment (tools/ensure_env.sh) runs.
PURE=(
    mmengine==0.10.7
    mmcv-lite==2.1.0
    mmpretrain==1.2.0
    mmdet==3.3.0
    mmsegmentation==1.2.2
    # mmengine
    addict==2.4.0
    termcolor==3.3.0
    yapf==0.43.0
    platformdirs==4.14.9
    # mmpretrain (importlib_metadata is imported by mmpretrain.utils)
    importlib-metadata==10.2.0
    lazy-importer==0.1.0
    mat4py==0.6.0
    modelindex==0.0.2
    model-index==0.1.11
    ordered-set==4.1.0
    # mmdet
    terminaltables==3.1.10
    # mmsegmentation
    prettytable==3.19.0
    wcwidth==0.9.5
    # sdt3_mm's declared text needs (ftfy: mmpretrain's tokenizers)
    ftfy==6.3.1
    # pkg_resources for mmengine's package lookups
    setuptools==81.0.0
)
# Compiled wheels, for the target Python on x86-64 Linux.
BINARY=(
    pycocotools==2.0.11
    shapely==2.2.0
)
PLATFORMS=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    PLATFORMS+=(--platform "${tag}_x86_64")
done

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
PIP=("$PYTHON" -m pip download --disable-pip-version-check --no-deps
     --only-binary=:all: -d "$DEST")
echo "prepare_wheels: downloading into $DEST for Python $PY_VERSION"
"${PIP[@]}" --python-version "$PY_VERSION" --implementation py --platform any \
    --abi none "${PURE[@]}"
"${PIP[@]}" --python-version "$PY_VERSION" --implementation cp \
    "${PLATFORMS[@]}" "${BINARY[@]}"

# One version of each: two wheels of one project stop the whole install.
dupes=$(ls "$DEST"/*.whl | xargs -n1 basename | cut -d- -f1 \
        | tr '[:upper:]' '[:lower:]' | tr '.' '_' | sort | uniq -d)
if [ -n "$dupes" ]; then
    echo "prepare_wheels: more than one wheel of: $dupes" >&2
    exit 1
fi

count=$(ls "$DEST"/*.whl | wc -l)
kib=$(du -sk "$DEST" | cut -f1)
echo "prepare_wheels: $count wheels, $((kib / 1024)) MB ($kib KiB) in $DEST"
if [ "$kib" -ge $((MAX_MB * 1024)) ]; then
    echo "prepare_wheels: the folder is over $MAX_MB MB" >&2
    exit 1
fi
