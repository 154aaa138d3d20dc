"""Training machinery: hooks and optimiser wrappers."""
from sdt3_mm.utils.optional_libraries import OptionalParts
from . import hooks
from .hooks import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403

OPTIONAL_PARTS = OptionalParts(__name__, include=(hooks.OPTIONAL_PARTS, ))
__getattr__ = OPTIONAL_PARTS.missing_attribute
