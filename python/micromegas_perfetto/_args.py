"""Python values as C arguments: strings as UTF-8 bytes, integers checked against their C type.

Every value that crosses into libperfetto_mm goes through one of these, so none wraps around
in ctypes. Their errors are ArgumentError / ArgumentUTF8Error: both the library's
InvalidArgumentError / InvalidUTF8Error and a RequestError (exit 2 on the command line).
"""
import ctypes
import operator
from typing import Union

from .errors import ArgumentError, ArgumentUTF8Error

StrOrBytes = Union[str, bytes, bytearray, memoryview]


def utf8(value: StrOrBytes, what: str) -> bytes:
    """A string argument as UTF-8 bytes (bytes pass through: the library validates them)."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ArgumentUTF8Error(f"{what} cannot be encoded as UTF-8: {e}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def int_in(value: int, low: int, high: int, what: str) -> int:
    """`value` as a Python int in [low, high]: an int or an integer type with __index__ (numpy's,
    as a DataFrame's values are), not a bool (nor numpy.bool_, which refuses __index__)."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif not isinstance(value, (bool, float, str, bytes)) and hasattr(type(value), "__index__"):
        try:
            number = operator.index(value)
        except TypeError:
            number = None
    if number is None or not low <= number <= high:
        raise ArgumentError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return number


def int32(value, what: str) -> int:
    return int_in(value, -(1 << 31), (1 << 31) - 1, what)


def uint32(value, what: str) -> int:
    return int_in(value, 0, (1 << 32) - 1, what)


def int64(value, what: str) -> int:
    return int_in(value, -(1 << 63), (1 << 63) - 1, what)


def uint64(value, what: str) -> int:
    return int_in(value, 0, (1 << 64) - 1, what)


_SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1
_INT_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_int) - 1)) - 1


def size(value, what: str) -> int:
    """A size_t argument."""
    return int_in(value, 0, _SIZE_MAX, what)


def fd(value, what: str = "file descriptor") -> int:
    """A file descriptor: a non-negative C int."""
    return int_in(value, 0, _INT_MAX, what)
