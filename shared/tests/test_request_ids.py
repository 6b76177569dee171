"""Request ids: 32 hex digits, the time then a count from a random start; unique and sortable."""

from __future__ import annotations

import re
import time

from algotrade.middleware import RequestIds


def test_new_ids_are_unique_sortable_by_time_and_start_apart() -> None:
    ids = RequestIds()
    before = int(time.time() * 1000)
    made = [ids.new() for _ in range(50_000)]
    after = int(time.time() * 1000)
    assert all(re.fullmatch(r"[0-9a-f]{32}", one) for one in made)
    assert len(set(made)) == len(made)
    assert made == sorted(made)  # the time leads, and the count goes up within a millisecond
    assert before <= int(made[0][:12], 16) <= int(made[-1][:12], 16) <= after
    # Another process's generator starts elsewhere in the 80-bit count.
    other = RequestIds().new()
    assert abs(int(other[12:], 16) - int(made[0][12:], 16)) > 50_000


def test_a_safe_given_id_is_kept_and_an_unsafe_one_replaced() -> None:
    ids = RequestIds()
    assert ids.of(b"req-42", None) == ("req-42", "req-42")
    assert ids.of(b"req-42", b"corr:1") == ("req-42", "corr:1")
    request_id, correlation_id = ids.of(b"bad id\r\nx: y", b"also bad!")
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert correlation_id == request_id
    assert ids.of(b"x" * 101, None)[0] != "x" * 101  # longer than 100 characters
