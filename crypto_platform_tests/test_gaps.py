"""Gaps: found per source and coin from its cadence, recorded, and seen repaired once filled."""

from __future__ import annotations

import datetime as dt
import json

from prometheus_client.parser import text_string_to_metric_families

from crypto_platform.completeness.gaps import Gap, mark_unrepairable
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.api_helpers import get, running_api
from crypto_platform_tests.conftest import run_cli

MINUTE_MS = 60_000


def ticks(symbol: str, start_ms: int, end_ms: int, step_ms: int = 2000) -> list[Tick]:
    return [
        Tick(source="simulated", symbol=symbol, price=100.0, event_time_ms=t, ingest_time_ms=t)
        for t in range(start_ms, end_ms, step_ms)
    ]


def store(settings: Settings, batch: list[Tick]) -> None:
    client = mongo.connect(settings)
    try:
        mongo.prices_collection(client, settings).insert_many([t.to_document() for t in batch])
    finally:
        client.close()


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def gaps(settings: Settings, since_ms: int, until_ms: int) -> list[dict]:
    result = run_cli(settings, "gaps", "--since", iso(since_ms), "--until", iso(until_ms))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_hole_and_a_stopped_coin_are_gaps_and_a_filled_hole_is_repaired(
    settings: Settings,
) -> None:
    now = now_ms()
    t0 = now - now % MINUTE_MS - 30 * MINUTE_MS
    hole = (t0 + 10 * MINUTE_MS, t0 + 13 * MINUTE_MS)  # the producer was down 3 minutes
    ahead = now + 5 * MINUTE_MS  # BTC and SOL go on past the span while the test runs
    store(settings, ticks("BTC", t0, hole[0]) + ticks("BTC", hole[1], ahead))
    store(settings, ticks("ETH", t0, now - 2 * MINUTE_MS))  # ETH stopped 2 minutes ago
    store(settings, ticks("SOL", t0, ahead))  # SOL whole

    found = gaps(settings, t0, now)

    btc, eth = found
    assert (btc["symbol"], btc["source"], btc["status"]) == ("BTC", "simulated", "open")
    assert btc["start"].startswith(iso(hole[0] - 2000)) and btc["end"].startswith(iso(hole[1]))
    assert btc["ticks_expected"] == 90  # three minutes at one tick per 2 s
    assert (eth["symbol"], eth["status"]) == ("ETH", "open")
    assert eth["seconds"] >= 118  # open: it runs up to now
    with running_api(settings) as api:
        served = get(api, "/gaps/BTC", since=iso(t0), until=iso(now)).json()
        scrape = get(api, "/metrics").text
    assert [(g["status"], g["ticks_expected"]) for g in served] == [("open", 90)]
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    btc_labels = (("source", "simulated"), ("symbol", "BTC"))
    assert samples[("crypto_gaps_open", btc_labels)] == 1
    assert samples[("crypto_gap_missing_seconds", btc_labels)] == 181.999
    checked = run_cli(settings, "check", env_override={"CRYPTO_CHECK_GAP_MAX_AGE_S": "600"})
    verdict = next(c for c in json.loads(checked.stdout)["checks"] if c["check"] == "gaps_repaired")
    assert checked.returncode == 1 and not verdict["passed"]
    assert verdict["metadata"]["stale_gaps"] == 1  # BTC's, open 20 minutes; ETH's is newer

    store(settings, ticks("BTC", hole[0], hole[1]))  # backfilled
    again = {g["symbol"]: g for g in gaps(settings, t0, now)}

    assert again["BTC"]["status"] == "repaired" and again["ETH"]["status"] == "open"
    client = mongo.connect(settings)
    try:
        ledger = mongo.gaps_collection(client, settings)
        start = next(d["start_ms"] for d in ledger.find({"symbol": "ETH"}))
        mark_unrepairable(ledger, Gap("simulated", "ETH", start, 0, 0), "history is gone")
    finally:
        client.close()
    last = {g["symbol"]: g for g in gaps(settings, t0, now)}
    assert last["ETH"]["status"] == "unrepairable" and last["ETH"]["reason"] == "history is gone"
    assert len(last) == 2  # the unrepairable span is not found again as a new gap
