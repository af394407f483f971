"""The tick model: what passes, what is refused and why."""

from __future__ import annotations

import pytest

from crypto_platform.ticks import InvalidTick, Tick, now_ms

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
        ({"price": -1}, "greater than or equal to 0.000000000000001"),
        ({"price": 0}, "greater than or equal to 0.000000000000001"),
        ({"price": 5e-324}, "greater than or equal to 0.000000000000001"),
        ({"price": 1e308}, "less than or equal to 1000000000000000"),
        ({"price": "NaN"}, "finite"),
        ({"number_of_markets": 2**64}, "less than or equal to 9223372036854775807"),
        ({"name": "x" * 201}, "at most 200 characters"),
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


YEAR_10209_MS = 259_999_999_999_999  # what a user sent: both times beyond year 9999


@pytest.mark.parametrize(
    ("event_time_ms", "ingest_time_ms", "reason"),
    [
        (YEAR_10209_MS, YEAR_10209_MS, "event_time_ms is more than 5 minutes in the future"),
        (4_102_444_800_000, 4_102_444_800_000, "event_time_ms is more than 5 minutes in the "),
        (1_763_700_000_000, 4_102_444_800_000, "ingest_time_ms is more than 5 minutes in the "),
        (2**70, 2**70, "event_time_ms is more than 5 minutes in the future"),
    ],
)
def test_times_in_the_future_are_refused_against_the_clock(
    event_time_ms: int, ingest_time_ms: int, reason: str
) -> None:
    late = {**VALID, "event_time_ms": event_time_ms, "ingest_time_ms": ingest_time_ms}
    with pytest.raises(InvalidTick, match=reason):
        Tick.build(**late)


def test_a_record_is_judged_by_when_it_was_written_so_every_reader_agrees() -> None:
    written = now_ms()
    ahead = {**VALID, "event_time_ms": written + 6 * 60_000, "ingest_time_ms": written + 6 * 60_000}
    message = Tick.build(**{**ahead, "event_time_ms": written, "ingest_time_ms": written}).to_json()

    assert Tick.from_json(message, written_ms=written).event_time_ms == written
    late_message = message.replace(str(written).encode(), str(ahead["event_time_ms"]).encode())
    # Read ten minutes after it was written, it is still six minutes ahead of its writing.
    with pytest.raises(InvalidTick, match="in the future"):
        Tick.from_json(late_message, written_ms=written)
    # A record without a timestamp (-1) is judged by the reader's clock.
    with pytest.raises(InvalidTick, match="in the future"):
        Tick.from_json(late_message, written_ms=-1)
