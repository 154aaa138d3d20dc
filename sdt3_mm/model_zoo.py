"""Names of our classifiers in MMPretrain's model hub.

``register_model_zoo()`` (called by ``import sdt3_mm``) registers the
classification metafiles (:data:`METAFILES`) with MMPretrain's public
``ModelHub.register_model_index``, so that ``mmpretrain.list_models``,
``get_model`` and ``inference_model`` know their names (for example
``get_model('e-spikeformer-s_8xb256-lamb-200e_in1k')``). Without MMPretrain
(see :mod:`sdt3_mm.utils.optional_libraries`) there is no hub to register
in, and nothing is registered.

The metafiles and the configs they name live in ``configs/`` of the
repository, next to the package, and their ``Config`` paths are relative to
the repository root. They are not part of the installed package: from an
editable install (``pip install -e .``) or a checkout on ``sys.path`` the
names are registered; from a non-editable install there is no ``configs/``
next to the package, and nothing is registered (use the config files of a
checkout instead).

No entry carries ``Weights``: the official checkpoints are not direct
downloads. ``get_model(name, pretrained=True)`` then only warns (MMPretrain's
behaviour) and returns randomly initialised weights; pass a converted
checkpoint as ``pretrained='path.pth'`` instead.

Only classifiers are registered: MMDetection 3.3 and MMSegmentation 1.2 have
no model hub to register in (their inferencers, mmengine's
``BaseInferencer``, look a name up only in the metafiles shipped inside the
installed ``mmdet`` / ``mmseg`` package); give them our config path.
"""
import os.path as osp
import warnings
from typing import List

from sdt3_mm.utils.optional_libraries import (find_library,
                                              library_import_error)

#: The repository root: ``Config`` paths in the metafiles are relative to it.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: The metafiles registered, relative to :data:`REPO_ROOT`; each holds
#: MMPretrain classifiers only.
METAFILES = (
    'configs/e_spikeformer/metafile.yml',
    'configs/meta_spikeformer/metafile.yml',
)


def model_names(metafile: str) -> List[str]:
    """The model names of one metafile, lower case as ``ModelHub`` keys them.

    Args:
        metafile (str): Path of a metafile (or model index).

    Returns:
        list[str]: The names, in file order.
    """
    from modelindex.load_model_index import load
    return [model.name.lower() for model in load(metafile).models]


def register_model_zoo(root: str = REPO_ROOT) -> List[str]:
    """Register :data:`METAFILES` under ``root`` in MMPretrain's model hub.

    Nothing is registered where MMPretrain does not import. Idempotent: a
    metafile whose names are all known to ``ModelHub`` already
    (registered before, by this function or by hand) is skipped. A metafile
    that is absent (a non-editable install ships no ``configs/``) is skipped
    silently. One of which only some names are known (a name taken by another
    model) is skipped with a warning naming them, rather than raising at
    import.

    Args:
        root (str): The directory the metafile and config paths are relative
            to. Defaults to the repository root next to the package.

    Returns:
        list[str]: The names registered by this call (empty when there was
        nothing new to register, or no MMPretrain to register in).
    """
    if library_import_error(find_library('mmpretrain')) is not None:
        return []
    from mmpretrain.apis.model import ModelHub

    registered = []
    for metafile in METAFILES:
        path = osp.join(root, metafile)
        if not osp.isfile(path):
            continue
        names = model_names(path)
        known = [name for name in names if ModelHub.has(name)]
        if len(known) == len(names):
            continue
        if known:
            warnings.warn(
                f'{path} not registered in the MMPretrain model hub: '
                f'{known} already name other models.')
            continue
        ModelHub.register_model_index(path, config_prefix=root)
        registered.extend(names)
    return registered
