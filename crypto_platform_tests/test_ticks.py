"""The tick model: what passes, what is refused and why."""

from __future__ import annotations

import pytest

from crypto_platform.ticks import InvalidTick, Tick

VALID = {
    "schema_version": 1,
    "source": "binance",
    "symbol": "BTC",
    "price": 64000.5,
    "quote": "USDT",
    "event_time_ms": 1_763_700_000_000,
    "ingest_time_ms": 1_763_700_000_100,
}


def test_round_trip_keeps_every_field_and_the_identity() -> None:
    tick = Tick.build(**VALID, name="Bitcoin", volume_24h="1234.5")

    again = Tick.from_json(tick.to_json())

    assert again == tick
    assert again.identity == "binance:BTC:1763700000000"
    assert again.to_document()["_id"] == again.identity
    assert "market_cap" not in again.to_document()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": None}, "price"),
        ({"price": "abc"}, "price is not a number"),
        ({"price": -1}, "greater than 0"),
        ({"price": 0}, "greater than 0"),
        ({"price": "NaN"}, "finite"),
        ({"symbol": "btc"}, "symbol"),
        ({"source": "nasdaq"}, "source"),
        ({"schema_version": 2}, "schema_version"),
        ({"event_time_ms": None}, "event_time_ms"),
    ],
)
def test_invalid_ticks_are_refused_with_a_reason(change: dict, reason: str) -> None:
    with pytest.raises(InvalidTick, match=reason):
        Tick.build(**{**VALID, **change})


@pytest.mark.parametrize("raw", [b"", b"{", b"<html>502 Bad Gateway</html>", b"[]", b"null"])
def test_bytes_that_are_not_a_tick_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidTick):
        Tick.from_json(raw)
