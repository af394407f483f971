"""What `crypto-platform report ...` and `crypto-platform check` do, minus the click layer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crypto_platform.reports import checks, statistics, storage, throughput
from crypto_platform.reports.stores import open_stores
from crypto_platform.settings import Settings


def to_json(value: Any) -> str:
    """Indented JSON; datetimes and other odd values as strings."""
    return json.dumps(value, indent=2, default=str)


def storage_json(settings: Settings) -> str:
    with open_stores(settings) as stores:
        return to_json(storage.storage_report(stores))


def throughput_json(settings: Settings) -> str:
    with open_stores(settings) as stores:
        return to_json(throughput.throughput_report(stores))


def statistics_json(
    settings: Settings, hour: dt.datetime | None, threshold_pct: float, window: int
) -> str:
    period = statistics.Period.hour(hour) if hour else statistics.Period.last_closed_hour()
    with open_stores(settings) as stores:
        return to_json(
            statistics.statistics_report(stores, period, threshold_pct=threshold_pct, window=window)
        )


def check_json(settings: Settings) -> tuple[str, bool]:
    """Every check's result as JSON, and whether a check of severity ERROR failed."""
    with open_stores(settings) as stores:
        results = checks.run_checks(stores)
    failed = any(not r["passed"] and r["severity"] == "ERROR" for r in results)
    return to_json({"passed": not failed, "checks": results}), failed
