"""The demo data sit beside the library, not in it: no module of sdt3_mm
imports ``sdt3_mm.datasets.demo`` but ``sdt3_mm/datasets/__init__.py``,
which registers the demo data sets the demo configs name."""
import ast
import glob
import os.path as osp

from sdt3_mm.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = osp.join(ROOT, 'sdt3_mm')
DEMO = 'sdt3_mm.datasets.demo'


def _module_name(path):
    relative = osp.relpath(path, ROOT)[:-len('.py')].split(osp.sep)
    if relative[-1] == '__init__':
        relative = relative[:-1]
    return '.'.join(relative)


def _imported_modules(path):
    """Every module an import statement of ``path`` names, relative imports
    resolved (``from . import x`` names ``package.x``)."""
    name = _module_name(path)
    package = name if path.endswith('__init__.py') else name.rpartition(
        '.')[0]
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parent = package.split('.')
                parent = parent[:len(parent) - node.level + 1]
                base = '.'.join(parent + ([base] if base else []))
            yield base
            yield from (f'{base}.{alias.name}' for alias in node.names)


def _is_demo(module):
    return module == DEMO or module.startswith(DEMO + '.')


def test_only_the_datasets_package_imports_the_demo_data():
    importers = set()
    for path in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True):
        if _is_demo(_module_name(path)):
            continue
        if any(_is_demo(module) for module in _imported_modules(path)):
            importers.add(_module_name(path))
    assert importers == {'sdt3_mm.datasets'}


def test_importing_sdt3_mm_registers_the_demo_data_sets():
    import sdt3_mm  # noqa: F401  what custom_imports=['sdt3_mm'] runs
    for name in ('ShapesClassification', 'ShapesDetection',
                 'ShapesSegmentation', 'ShapesEvents'):
        assert DATASETS.get(name).__module__.startswith(DEMO + '.'), name
