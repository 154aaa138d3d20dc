"""Check that everything the GPU check needs imports, and describe the
machine: GPU, torch, CUDA, triton, numpy, the OpenMMLab libraries, and
whether mmcv has its compiled ops.

Exits 1 naming each missing module and the wheel that provides it (a
module that is needed); modules that are optional are reported only.
Run by tools/gpu/check.sh with the wheel folder on PYTHONPATH.
"""
import importlib
import platform
import sys

# module: the package (a wheel of tools/gpu/prepare_wheels.sh or the GPU
# image's) that provides it.
NEEDED = {
    'torch': 'torch (the GPU image)',
    'numpy': 'numpy (the GPU image)',
    'triton': 'triton (the GPU image)',
    'mmengine': 'mmengine (.whl)',
    'mmcv': 'mmcv-lite (.whl)',
    'mmpretrain': 'mmpretrain (.whl)',
    'mmdet': 'mmdet (.whl)',
    'mmseg': 'mmsegmentation (.whl)',
    'pycocotools': 'pycocotools (.whl)',
    'shapely': 'shapely (.whl)',
    'pkg_resources': 'setuptools<82 (.whl)',
    'pytest': 'pytest (the GPU image)',
    'xdist': 'pytest-xdist (the GPU image)',
    'sdt3_mm': 'sdt3_mm (the working tree, on PYTHONPATH)',
}
OPTIONAL = {
    'onnx': 'onnx: the CUDA tier exports a model',
    'onnxruntime': 'onnxruntime: the CUDA tier runs the export',
}
# What needs mmcv's compiled ops (mmcv._ext): a wheel without them is all
# that can be prepared without a CUDA compiler for the GPU's torch.
NEEDS_OPS = {
    'mmcv.ops': 'mmcv.ops (compiled ops)',
    'mmdet.models': 'detection (mmdet.models imports mmcv.ops)',
    'mmseg.models': 'segmentation (mmseg.utils imports mmcv.ops)',
}


def _try_import(name):
    try:
        module = importlib.import_module(name)
    except Exception as error:  # any failure means the part cannot run
        return None, f'{type(error).__name__}: {error}'
    return module, None


def main():
    missing = []
    print(f'python {platform.python_version()} ({sys.executable})')
    for name, source in NEEDED.items():
        module, error = _try_import(name)
        if module is None:
            missing.append(f'{name}: install {source} ({error})')
            continue
        version = getattr(module, '__version__', '')
        print(f'{name:>14} {version}')
    for name, why in OPTIONAL.items():
        module, error = _try_import(name)
        print(f'{name:>14} ' +
              (getattr(module, '__version__', '') if module else
               f'absent ({why}; {error})'))
    for name, what in NEEDS_OPS.items():
        module, error = _try_import(name)
        print(f'{name:>14} ' +
              ('imports' if module else
               f'does not import, so {what} cannot run: {error}'))
    torch, _ = _try_import('torch')
    if torch is not None:
        print(f'{"cuda":>14} {torch.version.cuda} '
              f'(available: {torch.cuda.is_available()})')
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                print(f'{"gpu " + str(i):>14} {props.name}, '
                      f'{props.total_memory / 2**30:.1f} GiB, '
                      f'{props.multi_processor_count} SMs, '
                      f'capability {props.major}.{props.minor}')
            print(f'{"bf16":>14} {torch.cuda.is_bf16_supported()}')
    if missing:
        print('Missing modules:\n  ' + '\n  '.join(missing), file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
