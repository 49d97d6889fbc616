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
    # Unicode digits that are not ASCII (full-width, Arabic-Indic): int() and \d took them.
    ("\uff11\uff17\uff10\uff10", "use ISO 8601"),
    ("\u0661\u0667\u0660\u0660000000000000000", "use ISO 8601"),
    ("\uff12\uff10\uff12\uff13-11-14T22:13:20Z", "use ISO 8601"),
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


def test_numpy_datetime64_outside_the_nanosecond_range_is_refused_not_wrapped():
    """numpy's astype('datetime64[ns]') wraps around silently: the year 2500 in seconds read as
    1915-06-... (-1721518473709551616 ns), a range in the wrong century with no error. Each
    unit is now converted exactly, and out of range is the InvalidTimeError it is for every
    other time type."""
    np = pytest.importorskip("numpy")
    for far in (np.datetime64("2500-01-01", "s"), np.datetime64(10**17, "s"), np.datetime64("2262-04-12", "D"),
                np.datetime64("1600-01", "M"), np.datetime64(10**18, "Y"), np.datetime64("9999-12-31T23:59", "m")):
        with pytest.raises(InvalidTimeError, match="outside the range of int64 nanoseconds"):
            to_ns(far, "begin")
    assert to_ns(np.datetime64("2262-04-11T23:47:16.854775807", "ns")) == (1 << 63) - 1
    assert to_ns(np.datetime64("2023-11-14", "D")) == BASE - (22 * 3600 + 13 * 60 + 20) * 10**9
    assert to_ns(np.datetime64("2023-11", "M")) == 1_698_796_800 * 10**9
    assert to_ns(np.datetime64("2023", "Y")) == 1_672_531_200 * 10**9
    assert to_ns(np.datetime64(3, "10s")) == 30 * 10**9
    assert to_ns(np.datetime64(BASE // 1000 * 1000 + 1500, "ps")) == BASE // 1000 + 1  # floored
    assert to_ns(np.datetime64(-1, "ps")) == -1


def test_numpy_integers_are_integer_nanoseconds_and_nat_is_refused_plainly():
    """`df.time.astype('int64').min()` is a numpy.int64: 'cannot read begin np.int64(...): use
    ISO 8601 ... or integer nanoseconds' refused the integer nanoseconds it asked for. pandas'
    NaT (an empty column's min) is a datetime subclass whose fields are NaN: it raised
    "TypeError: 'float' object cannot be interpreted as an integer"."""
    np = pytest.importorskip("numpy")
    assert to_ns(np.int64(BASE), "begin") == BASE
    assert to_ns(np.uint32(7)) == 7
    with pytest.raises(InvalidTimeError, match="outside the range of int64 nanoseconds"):
        to_ns(np.uint64((1 << 64) - 1))
    for not_a_time in (np.True_, np.float64(1.0)):
        with pytest.raises(InvalidTimeError, match="cannot read begin"):
            to_ns(not_a_time, "begin")
    pd = pytest.importorskip("pandas")
    with pytest.raises(InvalidTimeError, match=r"^end is NaT \(not a time\): give a time, or None"):
        to_ns(pd.NaT, "end")
    with pytest.raises(InvalidTimeError, match=r"^cannot read begin \(a Series\): use ISO 8601"):
        to_ns(pd.Series([1, 2]), "begin")


@pytest.mark.parametrize("text", ["2023-11-14T22:13:20,05Z", "2023-11-14T22:13:20,050000000+00:00",
                                  "2023-11-14 23:13:20,05+01:00", "2023-11-14T23:13:20.05+01",
                                  "2023-11-14T21:13:20.05-01"])
def test_comma_decimal_sign_and_hour_offsets_as_gnu_date_prints_them(text):
    """`--begin "$(date -Ins -d '5 min ago')"` (GNU date: 2024-05-01T12:00:00,123456789+00:00,
    a comma as ISO 8601's decimal sign) was "cannot read begin", as was an offset of hours
    alone (+01)."""
    assert to_ns(text, "begin") == 1_700_000_000_050_000_000


def test_gnu_date_iso_output_is_read_to_the_nanosecond():
    import subprocess
    import shutil
    if shutil.which("date") is None:
        pytest.skip("no date command")
    done = subprocess.run(["date", "-u", "-d", "@1700000000.123456789", "-Ins"], capture_output=True, text=True)
    if done.returncode != 0 or "," not in done.stdout:  # not GNU date
        pytest.skip("date -Ins is GNU date's")
    assert to_ns(done.stdout.strip(), "begin") == 1_700_000_000_123_456_789


@pytest.mark.parametrize("ns, guess", [
    (1_700_000_000, ("seconds", BASE)),
    (1_700_000_000_123, ("milliseconds", BASE + 123_000_000)),
    (1_700_000_000_123_456, ("microseconds", BASE + 123_456_000)),
    (BASE, None),  # nanoseconds in 2023: as meant
    (0, None), (12, None),  # 1970 in every unit: no guess
    (946_684_799_999_999_999, None),  # just before 2000, but 2100 or later in microseconds
    (5_000_000_000, None),  # 2128 in seconds
])
def test_coarser_unit_of_an_integer_time_before_2000(ns, guess):
    from micromegas_perfetto.timeutil import coarser_unit
    assert coarser_unit(ns) == guess


def test_an_integer_time_in_seconds_gets_a_note_with_its_nanoseconds(small_lake, tmp_path):
    """`--begin 1700000000` (seconds, as `date +%s` prints) is read as nanoseconds, in 1970:
    the trace is written (it is a valid request) and a note says what was read and what the
    seconds would be in nanoseconds; times in nanoseconds, ISO times and --end alike."""
    from conftest import run_cli
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    out = tmp_path / "t.perfetto"
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet",
                     "--begin", "1700000000", "--end", "1700000000000")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    # Then the note of a range outside the process (write_perfetto's own test).
    assert len(notes) == 3 and notes[2].startswith("note: nothing in 1970-01-01T00:00:01.700000000Z .. "), notes
    assert notes[:2] == [
        "note: --begin 1700000000 is read as nanoseconds since the epoch, 1970-01-01T00:00:01.700000000Z; in seconds "
        "it is 2023-11-14T22:13:20.000000000Z, which as nanoseconds is --begin 1700000000000000000",
        "note: --end 1700000000000 is read as nanoseconds since the epoch, 1970-01-01T00:28:20.000000000Z; in "
        "milliseconds it is 2023-11-14T22:13:20.000000000Z, which as nanoseconds is --end 1700000000000000000"]
    assert out.stat().st_size > 0
    for begin in (str(BASE), "2023-11-14T22:13:20Z", "1970-01-01T00:00:01Z"):
        result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet", "--begin", begin)
        assert "note: --begin" not in result.stderr, result.stderr
