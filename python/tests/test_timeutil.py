"""Times as users type them (`timeutil.to_ns`): what is read, and the one-line errors."""
import pytest

from micromegas_perfetto.errors import InvalidTimeError
from micromegas_perfetto.timeutil import to_ns

BASE = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize("text, ns", [
    ("2023-11-14T22:13:20Z", BASE),
    ("2023-11-14T22:13:20.123456789Z", BASE + 123_456_789),
    ("2023-11-14 22:13:20", BASE),  # no zone: UTC
    ("2023-11-15T00:13:20+02:00", BASE),
    ("2023-11-14T21:13:20-0100", BASE),
    ("2023-11-15T22:12:20+23:59", BASE),
    (str(BASE), BASE),
])
def test_accepted(text, ns):
    assert to_ns(text, "begin") == ns


@pytest.mark.parametrize("text, message", [
    ("2023-11-14T22:13:20+25:00", "the UTC offset +25:00 is out of range (-23:59 to +23:59)"),
    ("2023-11-14T22:13:20-24:00", "the UTC offset -24:00 is out of range"),
    ("2023-11-14T22:13:20+01:60", "the UTC offset +01:60 is out of range"),
    ("2023-13-14T22:13:20Z", "month must be in 1..12"),
    ("yesterday", "use ISO 8601"),
])
def test_refused_with_a_message_for_users(text, message):
    """One plain reason (an out-of-range offset gave datetime's 'offset must be a timedelta
    strictly between -timedelta(hours=24) and timedelta(hours=24), not datetime.timedelta(...)')."""
    with pytest.raises(InvalidTimeError) as caught:
        to_ns(text, "begin")
    assert str(caught.value).startswith(f"cannot read begin '{text}': ")
    assert message in str(caught.value) and "timedelta" not in str(caught.value)


def test_datetimes_to_the_nanosecond():
    """What notebooks pass: the official client's query() gives pandas Timestamps, whose
    nanoseconds were dropped (a range end of ...20.119456118 became ...20.119456000, losing the
    spans ending in those 118 ns); numpy datetime64 and pyarrow timestamps were refused."""
    from datetime import datetime, timedelta, timezone
    import pyarrow as pa
    assert to_ns(datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)) == BASE + 123_456_000
    assert to_ns(datetime(2023, 11, 15, 0, 13, 20, tzinfo=timezone(timedelta(hours=2)))) == BASE
    for unit, raw in (("s", BASE // 10**9), ("ms", BASE // 10**6 + 119), ("us", BASE // 1000 + 119456),
                      ("ns", BASE + 119_456_118)):
        for tz in (None, "+00:00", "Europe/Paris"):
            scalar = pa.scalar(raw, pa.timestamp(unit, tz))
            assert to_ns(scalar, "end") == raw * {"s": 10**9, "ms": 10**6, "us": 1000, "ns": 1}[unit]
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    assert to_ns(pd.Timestamp("2023-11-14T22:13:20.119456118Z"), "end") == BASE + 119_456_118
    assert to_ns(pd.Timestamp("2023-11-14T22:13:20.119456118"), "end") == BASE + 119_456_118  # naive: UTC
    assert to_ns(pd.Timestamp("2023-11-14T23:13:20.000000007+01:00")) == BASE + 7
    assert to_ns(np.datetime64("2023-11-14T22:13:20.119456118"), "end") == BASE + 119_456_118
    assert to_ns(np.datetime64("2023-11-14T22:13:20", "s")) == BASE
    with pytest.raises(InvalidTimeError):
        to_ns(np.datetime64("NaT"))
