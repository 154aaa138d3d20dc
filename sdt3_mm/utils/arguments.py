"""What counts as an integer argument (a size, a count, an index)."""
import numbers


def is_integer(value):
    """Whether ``value`` is an integer: a Python or NumPy one (a config
    value computed with NumPy, ``np.int64(5)``, is a count like ``5``),
    bools excepted (``True`` is no size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
