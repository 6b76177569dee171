"""The one time module: round trips, naive means UTC, floors before 1970, millisecond precision."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from algotrade import epoch

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    "ms", [0, 1, -1, 999, -999, 1_704_164_640_123, -2_208_988_800_000, 7_258_118_399_999]
)
def test_milliseconds_round_trip_through_datetime_iso_numpy_and_pandas(ms: int) -> None:
    moment = epoch.datetime_from_ms(ms)
    assert moment.tzinfo is UTC
    assert epoch.ms_from_datetime(moment) == ms
    assert epoch.ms_from_iso(moment.isoformat()) == ms
    column = np.array([ms], np.int64)
    assert epoch.ms_from_datetime64(epoch.datetime64_from_ms(column)).tolist() == [ms]
    assert epoch.ms_from_pandas(epoch.pandas_index_from_ms(column)).tolist() == [ms]


@pytest.mark.parametrize("seconds", [0, 59, -1, -86_400, -2_208_988_800, 1_704_164_640])
def test_seconds_round_trip_through_milliseconds_and_iso_text(seconds: int) -> None:
    assert epoch.seconds_from_ms(epoch.ms_from_seconds(seconds)) == seconds
    text = epoch.iso_from_seconds(seconds)
    assert text.endswith("Z") and len(text) == 20
    assert epoch.parse_timestamp(text) == seconds
    assert epoch.seconds_from_iso_array([text]) is not None
    assert epoch.seconds_from_iso_array([text]).tolist() == [seconds]  # type: ignore[union-attr]
    assert epoch.seconds_from_datetime(epoch.datetime_from_seconds(seconds)) == seconds


def test_naive_datetimes_and_offsetless_text_mean_utc() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5, 678_000)
    aware = naive.replace(tzinfo=UTC)
    assert epoch.ms_from_datetime(naive) == epoch.ms_from_datetime(aware) == 1_704_164_645_678
    assert epoch.ms_from_iso("2024-01-02T03:04:05.678") == 1_704_164_645_678
    assert epoch.ms_from_datetime64(np.array(["2024-01-02T03:04:05.678"])).tolist() == [
        1_704_164_645_678
    ]
    assert epoch.ms_from_pandas(pd.DatetimeIndex([naive])).tolist() == [1_704_164_645_678]


def test_offsets_are_converted_not_dropped() -> None:
    plus_two = datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert epoch.seconds_from_datetime(plus_two) == 1_704_164_645
    assert epoch.parse_timestamp("2024-01-02T05:04:05+02:00") == 1_704_164_645
    assert epoch.as_utc(plus_two).hour == 3


def test_coarser_units_floor_before_1970_as_after() -> None:
    assert epoch.seconds_from_ms(-1) == -1
    assert epoch.seconds_from_ms(-1000) == -1
    assert epoch.seconds_from_ms(-1001) == -2
    assert epoch.seconds_from_ms(np.array([-1, 999, 1000], np.int64)).tolist() == [-1, 0, 1]
    just_before = datetime(1969, 12, 31, 23, 59, 59, 999_600, tzinfo=UTC)
    assert epoch.ms_from_datetime(just_before) == -1  # 0.4 ms before -0 ms floors to -1
    assert epoch.seconds_from_datetime(just_before) == -1
    assert epoch.iso_from_ms(-1) == "1969-12-31T23:59:59Z"
    assert epoch.ms_from_datetime64(np.array(["1969-12-31T23:59:59.9996"], "datetime64[us]")) == [
        -1
    ]


def test_millisecond_precision_is_kept_and_microseconds_floor() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678_999, tzinfo=UTC)
    assert epoch.ms_from_datetime(moment) == 1_704_164_645_678
    assert epoch.datetime_from_ms(1_704_164_645_678).microsecond == 678_000
    assert epoch.iso_from_ms(1_704_164_645_678) == "2024-01-02T03:04:05Z"
    # Far from the epoch a float of seconds cannot hold every millisecond; integers can.
    far = datetime(2199, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    assert epoch.ms_from_datetime(far) == 7_258_118_399_999


def test_utc_has_no_dst_but_local_days_do() -> None:
    # 2024-03-10 is 23 hours long in New York; UTC minutes stay 60 seconds apart across it.
    start = epoch.seconds_from_local_midnight(date(2024, 3, 10), NEW_YORK)
    end = epoch.seconds_from_local_midnight(date(2024, 3, 11), NEW_YORK)
    assert end - start == 23 * 3600
    assert epoch.local_date(end - 1, NEW_YORK) == date(2024, 3, 10)
    assert epoch.local_date(end, NEW_YORK) == date(2024, 3, 11)
    stamps = epoch.seconds_from_iso_array(
        ["2024-03-10T06:59:00Z", "2024-03-10T07:00:00Z", "2024-03-10T07:01:00Z"]
    )
    assert stamps is not None and np.diff(stamps).tolist() == [60, 60]


def test_text_without_offset_or_with_fractions_is_refused_where_it_must_be() -> None:
    assert epoch.parse_timestamp("2024-01-02T03:04:00", assume_utc=True) == 1_704_164_640
    assert epoch.parse_timestamp(1_704_164_640) == 1_704_164_640
    assert epoch.parse_timestamp(1_704_164_640.0) == 1_704_164_640
    for bad in ("2024-01-02T03:04:00", "2024-01-02T03:04:00.5Z", "yesterday", 1.5, True, None):
        with pytest.raises(ValueError):
            epoch.parse_timestamp(bad)


def test_the_vectorised_iso_parser_takes_only_the_canonical_form() -> None:
    assert epoch.seconds_from_iso_array([]) is not None
    for odd in (
        ["2024-02-30T00:00:00Z"],  # no such day
        ["2024-01-02 03:04:00Z"],
        ["2024-01-02T03:04:00+00:00"],
        ["2024-01-02T24:00:00Z"],
        [17],
    ):
        assert epoch.seconds_from_iso_array(odd) is None
    # Anything else is still read, one by one.
    assert epoch.ms_from_iso_array(
        ["2024-01-02T03:04:00+00:00", "2024-01-02T03:05:00"]
    ).tolist() == [
        1_704_164_640_000,
        1_704_164_700_000,
    ]


def test_second_arrays_saturate_instead_of_wrapping_into_range() -> None:
    huge = np.array([2**62, -(2**62), 60], np.int64)
    ms = epoch.ms_from_seconds(huge)
    assert ms[0] > 0 > ms[1] and ms[2] == 60_000


def test_timeframe_buckets_floor_and_ceil_from_the_epoch() -> None:
    assert epoch.floor_to_step(1_704_164_645, 300) == 1_704_164_400
    assert epoch.floor_to_step(-1, 60) == -60
    assert epoch.ceil_to_step(-1, 60) == 0
    assert epoch.ceil_to_step(600, 300) == 600
    stamps = np.array([-60_001, 0, 299_999], np.int64)
    assert epoch.floor_to_step(stamps, 300_000).tolist() == [-300_000, 0, 0]


def test_postgres_binary_timestamps_become_epoch_milliseconds() -> None:
    micros = np.array([0, -1, 1_500], np.int64)  # since 2000-01-01
    assert epoch.ms_from_postgres_micros(micros).tolist() == [
        946_684_800_000,
        946_684_799_999,
        946_684_800_001,
    ]


def test_vectorised_iso_parsing_matches_the_standard_library() -> None:
    rng = np.random.default_rng(7)
    stamps = rng.integers(-2_000_000_000, 4_000_000_000, 2000) // 60 * 60
    text = [datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps]
    parsed = epoch.seconds_from_iso_array(text)
    assert parsed is not None and parsed.tolist() == stamps.tolist()


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00+",
        "2024-01-01T00:00:00Ä",
    ],
)
def test_vectorised_iso_parsing_leaves_anything_else_to_the_slow_path(stamp: str) -> None:
    assert epoch.seconds_from_iso_array(["2024-01-01T00:00:00Z", stamp]) is None
