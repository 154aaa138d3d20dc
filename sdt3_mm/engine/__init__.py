from .checkpoint_files import *  # noqa: F401,F403
from .hooks import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
