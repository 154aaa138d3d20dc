"""The OpenMMLab libraries sdt3_mm can do without, and the one way its
packages import the modules that build on them.

MMEngine and MMCV are required. MMPretrain, MMDetection and MMSegmentation
are optional: a classification user needs neither MMDetection nor
MMSegmentation, and the backbones need none of the three. A library counts
as absent when importing it raises ``ImportError`` for any reason: not
installed, or installed but unable to import (MMDetection's and
MMSegmentation's models need mmcv's compiled ops, which an mmcv built
without them lacks).

A package imports each of its modules that builds on one library through
its :class:`OptionalParts` (conventionally ``OPTIONAL_PARTS``). Where the
library imports, the module is imported as usual and its names are bound
in the package. Where it does not, the names the module would have
registered still answer in their registry, with a builder that raises
:class:`MissingLibraryError` naming the package to install (a config asking
for ``type='sdt3_mm.SpikeFPNHead'`` without MMSegmentation says so), and
the package's ``__getattr__`` raises the same error for its names
(``from sdt3_mm.models import SpikeFPNHead``).
"""
import importlib
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple


class Library(NamedTuple):
    """An optional OpenMMLab library.

    Args:
        module (str): Its import name (``'mmseg'``).
        title (str): Its name in messages (``'MMSegmentation'``).
        requirement (str): What to ``pip install`` (``'mmsegmentation==
            1.2.2'``): the version the project is tested with.
        probes (tuple[str]): The modules of it our modules build on. The
            library counts as present only when all of them import: a
            library whose top level imports but whose models do not (no
            compiled mmcv ops) is absent as a whole, so that its parts do
            not register half.
    """
    module: str
    title: str
    requirement: str
    probes: Tuple[str, ...]


#: The optional libraries by import name: the one place that maps a library
#: to its pip requirement (setup.cfg's extras pin the same versions).
LIBRARIES = {
    library.module: library
    for library in (
        Library('mmpretrain', 'MMPretrain', 'mmpretrain==1.2.0',
                ('mmpretrain.apis', 'mmpretrain.datasets',
                 'mmpretrain.engine', 'mmpretrain.models')),
        Library('mmdet', 'MMDetection', 'mmdet==3.3.0',
                ('mmdet.datasets', 'mmdet.models')),
        Library('mmseg', 'MMSegmentation', 'mmsegmentation==1.2.2',
                ('mmseg.datasets', 'mmseg.models')),
    )
}


class MissingLibraryError(ImportError):
    """A part of sdt3_mm was asked for whose library does not import.

    The library's own import error is the ``__cause__``, and its message
    is part of this one.

    Args:
        part (str): What was asked for (``'sdt3_mm.SpikeFPNHead'``).
        library (Library): The library it needs.
        cause (ImportError): Why the library did not import.
    """

    def __init__(self, part: str, library: Library, cause: ImportError):
        super().__init__(
            f'{part} needs {library.title}: pip install '
            f'{library.requirement} (importing {library.module} failed: '
            f'{type(cause).__name__}: {cause})')
        self.part = part
        self.library = library


def find_library(module: str) -> Library:
    """The optional library of an import name.

    Args:
        module (str): The import name (``'mmseg'``).

    Returns:
        Library: Its entry of :data:`LIBRARIES`.

    Raises:
        ValueError: If ``module`` is not an optional library.
    """
    if module not in LIBRARIES:
        raise ValueError(f'{module!r} is not an optional library of sdt3_mm; '
                         f'those are {sorted(LIBRARIES)}')
    return LIBRARIES[module]


def library_import_error(library: Library) -> Optional[ImportError]:
    """Why ``library`` does not import, or None when it does.

    Args:
        library (Library): The library.

    Returns:
        ImportError | None: The error of the first of its :attr:`probes
        <Library.probes>` that failed to import; None when all imported.
        Errors other than ``ImportError`` propagate.
    """
    for probe in library.probes:
        try:
            importlib.import_module(probe)
        except ImportError as error:
            return error
    return None


def _missing_builder(part: str, library: Library, cause: ImportError):
    """A registry entry for ``part`` that raises :class:`MissingLibraryError`
    when built: the registry keeps answering the name, with the reason."""

    def missing_part(*args, **kwargs):
        raise MissingLibraryError(part, library, cause) from cause

    missing_part.__name__ = missing_part.__qualname__ = part.split('.')[-1]
    return missing_part


class OptionalParts:
    """The modules of one package that build on an optional library.

    A package creates one, imports each such module through
    :meth:`import_module` (binding what it returns in its namespace), takes
    :attr:`available` into its ``__all__`` and :meth:`missing_attribute` as
    its ``__getattr__``::

        OPTIONAL_PARTS = OptionalParts(__name__)
        globals().update(OPTIONAL_PARTS.import_module(
            '.spike_fpn_head', 'mmseg', MODELS, ['SpikeFPNHead']))
        __all__ = [*OPTIONAL_PARTS.available]
        __getattr__ = OPTIONAL_PARTS.missing_attribute

    A package that star-imports subpackages with optional parts passes
    theirs as ``include``, so that it names the missing library for their
    names too.

    Args:
        package (str): The package's ``__name__``; modules are relative to
            it.
        include (Sequence[OptionalParts]): Those of the subpackages whose
            names the package re-exports.
    """

    def __init__(self, package: str, include: Sequence['OptionalParts'] = ()):
        self.package = package
        #: Names bound, in the order imported.
        self.available = []
        #: Names not bound, each with the library it needs and why that
        #: library did not import.
        self.missing: Dict[str, Tuple[Library, ImportError]] = {}
        for parts in include:
            self.missing.update(parts.missing)

    def import_module(self,
                      module: str,
                      library: str,
                      registry: Optional[Any] = None,
                      registered: Sequence[str] = (),
                      also: Sequence[str] = ()) -> Dict[str, Any]:
        """Import ``module`` if ``library`` imports, else register its
        names as missing.

        Args:
            module (str): The module, relative to the package
                (``'.spike_fpn_head'``).
            library (str): The import name of the library it builds on
                (a key of :data:`LIBRARIES`).
            registry (Registry, optional): The ``sdt3_mm`` registry the
                module registers ``registered`` in. Defaults to None (it
                registers nothing).
            registered (Sequence[str]): The names the module registers in
                ``registry`` (its class names); the package exports them.
            also (Sequence[str]): Further names the package exports from
                the module (functions, constants).

        Returns:
            dict: The exported names and their objects; empty when the
            library does not import. An ``ImportError`` of the module itself
            while the library imports propagates: that is a fault of ours,
            not an absent library.
        """
        if registered and registry is None:
            raise ValueError(f'{self.package}{module}: registered names '
                             f'{list(registered)} need their registry')
        optional = find_library(library)
        names = [*registered, *also]
        cause = library_import_error(optional)
        if cause is None:
            imported = importlib.import_module(module, self.package)
            self.available.extend(names)
            return {name: getattr(imported, name) for name in names}
        for name in registered:
            registry.register_module(
                name=name,
                module=_missing_builder(f'{registry.scope}.{name}', optional,
                                        cause))
        for name in names:
            self.missing[name] = (optional, cause)
        return {}

    def missing_attribute(self, name: str):
        """The package's ``__getattr__``: a name whose library is absent
        raises :class:`MissingLibraryError`, any other unknown name
        ``AttributeError`` as usual.

        Args:
            name (str): The attribute looked up.

        Raises:
            MissingLibraryError: ``name`` needs a library that does not
                import.
            AttributeError: The package has no ``name``.
        """
        if name in self.missing:
            library, cause = self.missing[name]
            raise MissingLibraryError(f'{self.package}.{name}', library,
                                      cause) from cause
        raise AttributeError(
            f'module {self.package!r} has no attribute {name!r}')
