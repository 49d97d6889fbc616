"""Python values as C arguments: strings as UTF-8 bytes, integers checked against their C type.

Every value that crosses into libperfetto_mm goes through one of these, so none wraps around
in ctypes.
"""
from typing import Union

from .errors import InvalidArgumentError, InvalidUTF8Error

StrOrBytes = Union[str, bytes, bytearray, memoryview]


def utf8(value: StrOrBytes, what: str) -> bytes:
    """A string argument as UTF-8 bytes (bytes pass through: the library validates them)."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidUTF8Error(f"{what} cannot be encoded as UTF-8: {e}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def int_in(value: int, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgumentError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return value


def int32(value, what: str) -> int:
    return int_in(value, -(1 << 31), (1 << 31) - 1, what)


def uint32(value, what: str) -> int:
    return int_in(value, 0, (1 << 32) - 1, what)


def int64(value, what: str) -> int:
    return int_in(value, -(1 << 63), (1 << 63) - 1, what)


def uint64(value, what: str) -> int:
    return int_in(value, 0, (1 << 64) - 1, what)


def size(value, what: str) -> int:
    """A size_t argument (64-bit platforms only are supported)."""
    return int_in(value, 0, (1 << 64) - 1, what)


def fd(value, what: str = "file descriptor") -> int:
    """A file descriptor: a non-negative C int."""
    return int_in(value, 0, (1 << 31) - 1, what)
