"""The chaos run's tick-by-tick comparison, fed crafted topics and stores (no server).

A tick lost from a store, a tick stored twice, a stored tick the topic never held and a
window counting the wrong number of ticks must each be reported; a clean run reports none.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from crypto_platform.chaos.compare import (
    Ledger,
    TickKey,
    check_store,
    compare_windows,
    expected_windows,
    ledger_of,
)
from crypto_platform.ticks import Tick

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
T0_MS = int(T0.timestamp() * 1000)
T0_S = T0_MS // 1000


def tick(symbol: str, event_ms: int, *, ingest_delay_ms: int = 800) -> Tick:
    return Tick.build(
        source="simulated",
        symbol=symbol,
        price=100.0 + event_ms % 1000,
        event_time_ms=event_ms,
        ingest_time_ms=event_ms + ingest_delay_ms,
    )


def key(sent: Tick) -> TickKey:
    return (sent.source, sent.symbol, sent.event_time_ms)


TOPIC = [tick(symbol, T0_MS + i * 7_000) for symbol in ("BTC", "ETH") for i in range(10)]


def topic_ledger() -> Ledger:
    return ledger_of(sent.to_json() for sent in TOPIC)


def stored_once() -> Counter[TickKey]:
    """A store holding every tick of the topic exactly once."""
    return Counter(key(sent) for sent in TOPIC)


def test_the_ledger_holds_each_tick_once_and_counts_resent_and_invalid_messages() -> None:
    resent = tick("BTC", TOPIC[2].event_time_ms, ingest_delay_ms=5_000)  # after a producer crash
    values = [sent.to_json() for sent in TOPIC] + [resent.to_json(), b"<html>502</html>", b"", None]

    ledger = ledger_of(values)

    assert ledger.messages == len(TOPIC) + 4
    assert set(ledger.ingest_ms) == {key(sent) for sent in TOPIC}
    assert ledger.resent == Counter({key(resent): 1})
    assert ledger.invalid == 3
    assert ledger.ingest_ms[key(resent)] == resent.ingest_time_ms  # the copy read last


def test_a_store_holding_every_tick_once_reports_nothing() -> None:
    check = check_store(topic_ledger(), stored_once())

    assert check.summary() == {"lost": 0, "duplicated": 0, "not_in_topic": 0, "lost_examples": []}


def test_a_tick_the_producer_resent_but_the_store_holds_once_is_no_duplicate() -> None:
    ledger = ledger_of([sent.to_json() for sent in TOPIC] + [TOPIC[0].to_json()])

    check = check_store(ledger, stored_once())

    assert check.summary()["duplicated"] == 0 and check.summary()["lost"] == 0


def test_a_lost_tick_is_reported_by_its_identity() -> None:
    copies = stored_once()
    lost = TOPIC[13]  # ETH, the fourth
    del copies[key(lost)]

    check = check_store(topic_ledger(), copies)

    assert check.lost == {key(lost)}
    assert check.summary() == {
        "lost": 1,
        "duplicated": 0,
        "not_in_topic": 0,
        "lost_examples": [lost.identity],
    }


def test_lost_examples_are_a_few_in_identity_order() -> None:
    copies = Counter({key(sent): 1 for sent in TOPIC if sent.symbol == "ETH"})  # BTC all lost

    summary = check_store(topic_ledger(), copies).summary()

    assert summary["lost"] == 10
    btc = sorted((sent for sent in TOPIC if sent.symbol == "BTC"), key=key)
    assert summary["lost_examples"] == [sent.identity for sent in btc[:5]]


def test_a_duplicated_tick_is_reported_with_its_extra_copies() -> None:
    copies = stored_once()
    copies[key(TOPIC[4])] += 2  # three documents of one tick

    check = check_store(topic_ledger(), copies)

    assert check.duplicated == {key(TOPIC[4]): 2}
    assert check.lost == set()
    assert check.summary()["duplicated"] == 2


def test_a_stored_tick_the_topic_never_held_is_reported() -> None:
    copies = stored_once()
    copies[("simulated", "SOL", T0_MS)] = 1

    check = check_store(topic_ledger(), copies)

    assert check.unknown == 1
    assert check.summary()["not_in_topic"] == 1
    assert check.lost == set() and check.duplicated == {}


# Windows of 300 s sliding by 60 s, as the job's defaults. A tick at T0+10s is in the five
# windows starting T0-240s ... T0; one at T0+70s in the five starting T0-180s ... T0+60s.
WINDOW_S, SLIDE_S = 300, 60
TWO_TICKS = [tick("BTC", T0_MS + 10_000), tick("BTC", T0_MS + 70_000)]
COUNTS = {-240: 1, -180: 2, -120: 2, -60: 2, 0: 2, 60: 1}  # window start - T0 (s): ticks


def two_tick_windows() -> Counter[tuple[str, int]]:
    return expected_windows(ledger_of(t.to_json() for t in TWO_TICKS), WINDOW_S, SLIDE_S)


def test_each_window_expects_the_distinct_ticks_in_it() -> None:
    resent = [t.to_json() for t in TWO_TICKS] + [TWO_TICKS[1].to_json()]

    expected = expected_windows(ledger_of(resent), WINDOW_S, SLIDE_S)

    assert expected == Counter({("BTC", T0_S + offset): n for offset, n in COUNTS.items()})


def test_windows_counting_exactly_the_topics_ticks_report_nothing() -> None:
    expected = two_tick_windows()

    check = compare_windows(expected, dict(expected))

    assert check.summary() == {"checked": 6, "wrong": 0, "wrong_examples": []}


def test_a_window_with_a_wrong_count_is_reported_with_both_counts() -> None:
    stored = dict(two_tick_windows())
    stored[("BTC", T0_S)] = 3

    check = compare_windows(two_tick_windows(), stored)

    assert check.wrong == [(("BTC", T0_S), 3, 2)]
    assert check.summary() == {
        "checked": 6,
        "wrong": 1,
        "wrong_examples": [
            {
                "symbol": "BTC",
                "window_start": "2026-01-05T12:00:00+00:00",
                "stored": 3,
                "expected": 2,
            }
        ],
    }


def test_a_window_without_a_row_is_reported_as_stored_none() -> None:
    stored = dict(two_tick_windows())
    del stored[("BTC", T0_S + 60)]

    check = compare_windows(two_tick_windows(), stored)

    assert check.wrong == [(("BTC", T0_S + 60), None, 1)]


def test_a_row_for_a_window_the_topic_has_no_tick_in_is_reported() -> None:
    stored = {**two_tick_windows(), ("ETH", T0_S): 1}

    check = compare_windows(two_tick_windows(), stored)

    assert check.checked == 7
    assert check.wrong == [(("ETH", T0_S), 1, 0)]


def test_a_resent_tick_counted_twice_is_reported_in_every_window_it_is_in() -> None:
    # What a job that did not drop duplicates would write after the producer resent a tick.
    counted_twice = [TWO_TICKS[0], *TWO_TICKS]
    stored: dict[tuple[str, int], int] = Counter()
    for sent in counted_twice:
        for window, n in expected_windows(ledger_of([sent.to_json()]), WINDOW_S, SLIDE_S).items():
            stored[window] += n

    check = compare_windows(two_tick_windows(), stored)

    assert [(window[1] - T0_S, got, want) for window, got, want in check.wrong] == [
        (-240, 2, 1),
        (-180, 3, 2),
        (-120, 3, 2),
        (-60, 3, 2),
        (0, 3, 2),
    ]
