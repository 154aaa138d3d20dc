"""The models: :mod:`.neurons` (the neuron contract and the neurons),
:mod:`.layers` (layers reading spikes, the attention product, the blocks'
contract), :mod:`.backbones` (each with its family's blocks), then the
heads, necks and data preprocessors of the three libraries; :mod:`.utils`
converts and loads checkpoints."""
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .neurons import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
