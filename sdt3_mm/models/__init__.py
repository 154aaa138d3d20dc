"""The models: :mod:`.neurons` (the neuron contract and the neurons),
:mod:`.layers` (layers reading spikes, the attention product, the blocks'
contract), :mod:`.backbones` (each with its family's blocks), then the
heads, necks and data preprocessors of the three libraries. The backbones,
neurons, layers and :class:`SpikeFPN` need none of the three; the other
parts need their library (see :mod:`sdt3_mm.utils.optional_libraries`):
where it does not import, their registry names and their names here raise
an error naming the package to install."""
from sdt3_mm.utils.optional_libraries import OptionalParts
from . import (data_preprocessors, decode_heads, dense_heads, heads,
               roi_heads, selfsup)
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .neurons import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403

OPTIONAL_PARTS = OptionalParts(
    __name__,
    include=(data_preprocessors.OPTIONAL_PARTS, decode_heads.OPTIONAL_PARTS,
             dense_heads.OPTIONAL_PARTS, heads.OPTIONAL_PARTS,
             roi_heads.OPTIONAL_PARTS, selfsup.OPTIONAL_PARTS))
__getattr__ = OPTIONAL_PARTS.missing_attribute
