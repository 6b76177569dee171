"""Upper bounds for the integers clients send, so that none overflows where it lands.

Every integer in a path, query or body has explicit bounds (``tests/test_conventions.py``
checks every service's OpenAPI): an unbounded one reaches PostgreSQL as int8/int4 and turns
into a 500. Pages are clamped to each endpoint's own maximum after validation.
"""

from __future__ import annotations

INT4_MAX = 2**31 - 1  # PostgreSQL integer: strategy versions, counters
OFFSET_MAX = INT4_MAX  # no listing here has more rows than that
PAGE_MAX = 1_000_000  # accepted ``limit`` values; each endpoint clamps to its own page size
