"""Times as integer nanoseconds since the Unix epoch (UTC), from what users type or pass.

Every time is checked against the int64-nanosecond range (1677-09-21 .. 2262-04-11) before it
is used, so none wraps around on its way into the library.
"""
import operator
import re
import sys
from datetime import datetime, timezone
from typing import Optional, Tuple, Union

from .errors import InvalidTimeError

TimeLike = Union[None, int, str, datetime]

NS_MIN, NS_MAX = -(1 << 63), (1 << 63) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<hms>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<frac>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?$", re.IGNORECASE | re.ASCII)  # ASCII digits only, not any Unicode digit
# The decimal sign may be a comma, as ISO 8601 prefers and GNU `date -Ins` / `--iso-8601=ns`
# print it (2024-05-01T12:00:00,123456789+00:00); a UTC offset may be hours alone (+01).


def _in_range(ns: int, what: str, value) -> int:
    if not NS_MIN <= ns <= NS_MAX:
        raise InvalidTimeError(f"{what} {value!r} is outside the range of int64 nanoseconds "
                               "(years 1678 to 2262)")
    return ns


def _datetime_ns(value: datetime) -> int:
    """A datetime's nanoseconds since the epoch (naive = UTC), with the nanoseconds below the
    microsecond that a pandas Timestamp (a datetime subclass) carries in `nanosecond`: what
    the official client's `query()` returns for time columns."""
    moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    delta = datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
                     moment.microsecond, tzinfo=moment.tzinfo) - _EPOCH
    nanosecond = getattr(value, "nanosecond", 0)
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
            + (nanosecond if isinstance(nanosecond, int) else 0))


_NUMPY_UNIT_NS = {"W": 604_800 * 10**9, "D": 86_400 * 10**9, "h": 3_600 * 10**9, "m": 60 * 10**9, "s": 10**9,
                  "ms": 10**6, "us": 10**3, "ns": 1}
_NUMPY_SUB_NS = {"ps": 10**3, "fs": 10**6, "as": 10**9}  # units per nanosecond


def _datetime64_ns(numpy, value) -> int:
    """A numpy datetime64's nanoseconds since the epoch, computed exactly from its own unit
    (numpy's astype('datetime64[ns]') wraps around silently outside 1678..2262: the year
    2500 in seconds read as 1915); sub-nanosecond units are floored."""
    unit, count = numpy.datetime_data(value.dtype)
    raw = int(value.astype("int64")) * count
    if unit in _NUMPY_UNIT_NS:
        return raw * _NUMPY_UNIT_NS[unit]
    if unit in _NUMPY_SUB_NS:
        return raw // _NUMPY_SUB_NS[unit]
    months = raw * 12 if unit == "Y" else raw  # "Y" or "M": calendar units from 1970-01
    year, month = divmod(months, 12)
    year += 1970
    if not 1 <= year <= 9999:
        return NS_MAX + 1 if year > 0 else NS_MIN - 1  # outside the range, whatever the day
    return _datetime_ns(datetime(year, month + 1, 1, tzinfo=timezone.utc))


def _numpy_or_arrow_ns(value) -> Optional[int]:
    """numpy.datetime64 and pyarrow timestamp scalars, exactly (None for anything else). Neither
    module is imported here: a value of theirs means they are loaded."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.datetime64):
        if numpy.isnat(value):
            return None
        return _datetime64_ns(numpy, value)
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, pyarrow.TimestampScalar) and value.is_valid:
        factor = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[value.type.unit]
        return value.value * factor  # the instant, UTC whatever the zone
    return None


def _is_null_time(value) -> bool:
    """numpy's NaT (datetime64) or a null pyarrow timestamp scalar."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.datetime64):
        return bool(numpy.isnat(value))
    pyarrow = sys.modules.get("pyarrow")
    return pyarrow is not None and isinstance(value, pyarrow.TimestampScalar) and not value.is_valid


def _integer(value) -> Optional[int]:
    """An integer-like object's value (numpy.int64, any type with __index__ but bool and
    numpy.bool_, which refuse it), else None."""
    if isinstance(value, (str, bytes, float)) or not hasattr(type(value), "__index__"):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def to_ns(value: TimeLike, what: str = "time") -> int:
    """Nanoseconds since the epoch for an int (already ns; numpy integers too), a datetime (naive = UTC; a pandas
    Timestamp to the nanosecond), a numpy datetime64 or pyarrow timestamp scalar (exactly), or
    ISO 8601 text with up to nanosecond precision (no zone = UTC)."""
    if isinstance(value, bool):
        raise InvalidTimeError(f"cannot read {what} {value!r}")
    if isinstance(value, int):
        return _in_range(value, what, value)
    if isinstance(value, datetime):
        if value != value:  # pandas' NaT (a datetime subclass, unequal to itself): no time at all
            raise InvalidTimeError(f"{what} is NaT (not a time): give a time, or None for the process's range")
        return _in_range(_datetime_ns(value), what, value.isoformat())
    if _is_null_time(value):  # a DataFrame's .values of a null time, a null pyarrow scalar: as pandas' NaT
        raise InvalidTimeError(f"{what} is NaT (not a time): give a time, or None for the process's range")
    exact = _numpy_or_arrow_ns(value)
    if exact is not None:  # shown as numpy shows it; a pyarrow scalar's repr wraps around: its ns
        return _in_range(exact, what, value if type(value).__module__.startswith("numpy") else exact)
    integer = _integer(value)
    if integer is not None:  # numpy integers (a column's .astype("int64") values): ns, as an int is
        return _in_range(integer, what, value)
    if isinstance(value, str):
        text = value.strip()
        integer = integer_text(text, what)
        if integer is not None:
            return _in_range(integer, what, text)
        match = _ISO.match(text)
        if match:
            tz = match["tz"] or "+00:00"
            tz = "+00:00" if tz.upper() == "Z" else (tz if ":" in tz else f"{tz[:3]}:{tz[3:] or '00'}")
            if int(tz[1:3]) > 23 or int(tz[4:6]) > 59:  # datetime's own message names its internals
                raise InvalidTimeError(f"cannot read {what} {value!r}: the UTC offset {tz} is out of range "
                                       "(-23:59 to +23:59)")
            hms = match["hms"] or "00:00:00"
            if hms.count(":") == 1:
                hms += ":00"
            try:
                moment = datetime.fromisoformat(f"{match['date']}T{hms}{tz}")
            except ValueError as e:
                raise InvalidTimeError(f"cannot read {what} {value!r}: {e}") from None
            fraction = (match["frac"] or "").ljust(9, "0")
            return _in_range(_datetime_ns(moment) + int(fraction or 0), what, value)
    shown = repr(value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "...")
    if not isinstance(value, str) and ("\n" in shown or len(shown) > 80):  # a pandas Series, a DataFrame
        shown = f"(a {type(value).__name__})"
    raise InvalidTimeError(f"cannot read {what} {shown}: use ISO 8601 (2024-05-01T12:00:00.123456789Z) "
                           "or integer nanoseconds since the epoch")


# 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in nanoseconds since the epoch.
_YEAR_2000_NS = 946_684_800 * 10**9
_YEAR_2100_NS = 4_102_444_800 * 10**9


def integer_text(text: str, what: str = "time") -> Optional[int]:
    """The integer that `text` (already stripped) writes, if it is an integer time's text: an
    optional sign then ASCII digits (int() takes any Unicode digit); None for other text.
    More than 19 digits is an InvalidTimeError naming `what` (no int64 has them)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    if len(text.lstrip("+-")) > 19:
        raise InvalidTimeError(f"{what} {text[:30]}{'...' if len(text) > 30 else ''} is outside the range "
                               "of int64 nanoseconds (years 1678 to 2262)")
    return int(text)


def coarser_unit(ns: int) -> Optional[Tuple[str, int]]:
    """For an integer time read as nanoseconds but before 2000 (no micromegas telemetry is),
    the unit it is likely in: ("seconds", ns) etc. with that reading in nanoseconds, when
    it falls in 2000-2099; else None."""
    if not 0 <= ns < _YEAR_2000_NS:
        return None
    for unit, factor in (("seconds", 10**9), ("milliseconds", 10**6), ("microseconds", 10**3)):
        if _YEAR_2000_NS <= ns * factor < _YEAR_2100_NS:
            return unit, ns * factor
    return None


def ns_to_iso(ns: int) -> str:
    """RFC 3339 text with nanoseconds, UTC."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"
