"""Kafka message values with extreme values in every field, for property-based tests.

Most draws are near a valid tick (so that the valid path is exercised, not only refusals);
each field may instead be huge or tiny, beyond 64 bits, at a timestamp edge, a long or odd
string, a nested object, the wrong type, or missing; and some values are not JSON at all.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from crypto_platform.ticks import (
    INT64_MAX,
    MAX_EVENT_AHEAD_MS,
    PRICE_MAX,
    PRICE_MIN,
    SOURCES,
    now_ms,
)

YEAR_9999_MS = 253_402_300_799_999
# The moment the times are drawn around. Fixed, so that a draw replays alike (Hypothesis
# shrinks by replaying); a test that needs the edge exactly passes it as the write time.
NOW_MS = now_ms()

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
wild = (
    json_values
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.text(min_size=1000, max_size=1500)
)


times = st.one_of(
    st.integers(min_value=NOW_MS - 86_400_000, max_value=NOW_MS),
    st.integers(min_value=-5_000, max_value=5_000).map(lambda d: NOW_MS + MAX_EVENT_AHEAD_MS + d),
    st.sampled_from([0, 1, -1, YEAR_9999_MS, YEAR_9999_MS + 1, INT64_MAX, 2**63, 2**64]),
    st.integers(),
    wild,
)
prices = st.one_of(
    st.floats(min_value=PRICE_MIN, max_value=PRICE_MAX),
    st.floats(),
    st.sampled_from(["1e308", "5e-324", "-0", "0x10", " 1 ", "", "1e15", "1e-15"]),
    st.integers(min_value=1, max_value=10**6),
    wild,
)
symbols = st.one_of(
    st.sampled_from(["BTC", "ETH", "1INCH"]),
    st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True),
    wild,
)
texts = st.one_of(st.text(max_size=250), st.text(min_size=2_000, max_size=3_000), wild)
numbers = st.one_of(
    st.floats(), st.integers(min_value=0, max_value=2**70), st.integers(max_value=-1), wild
)


@st.composite
def tick_fields(draw: st.DrawFn) -> dict[str, Any]:
    """One message's fields: required ones usually there, optional ones now and then."""
    required = {
        "schema_version": draw(st.just(1) | wild),
        "source": draw(st.sampled_from(SOURCES) | wild),
        "symbol": draw(symbols),
        "price": draw(prices),
        "event_time_ms": draw(times),
        "ingest_time_ms": draw(times),
    }
    optional = {
        "quote": st.sampled_from(["USD", "USDT"]) | wild,
        "name": texts,
        "uuid": texts,
        "market_cap": numbers,
        "volume_24h": numbers,
        "change_24h_pct": numbers,
        "number_of_markets": numbers,
        "total_supply": numbers,
    }
    fields = {k: v for k, v in required.items() if draw(st.integers(0, 19))}  # 1 in 20 missing
    for name, values in optional.items():
        if draw(st.booleans()):
            fields[name] = draw(values)
    fields.update(draw(st.dictionaries(st.text(max_size=20), json_values, max_size=2)))
    return fields


def _encode(fields: dict[str, Any]) -> bytes:
    # NaN and Infinity as JavaScript writes them; lone surrogates as \\ud800 escapes.
    return json.dumps(fields, allow_nan=True).encode()


message_values = st.one_of(
    tick_fields().map(_encode),
    tick_fields().map(_encode),
    tick_fields().map(_encode),
    st.binary(max_size=200),
    st.just(b""),
)
