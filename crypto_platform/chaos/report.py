"""The chaos results: per fault and run, ticks during it, losses, duplicates and recovery.

Acknowledged, lost (by the broker; by us), duplicated and resent ticks are counted by the
phase their ingest time falls in, from one fault's injection to the next one's (ticks
before the first fault form the first row), so every tick of the run belongs to exactly one
row. "Ticks during it" are the acknowledged ticks ingested between injection and recovery.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crypto_platform.chaos.compare import BrokerCheck, Ledger, StoreCheck, TickKey
from crypto_platform.chaos.windows_check import LatestCheck, WindowCheck

BASELINE = "none (before the first fault)"


@dataclass(frozen=True)
class FaultRun:
    """One applied fault and when things happened (epoch ms; recovery in s, None: never)."""

    key: str
    label: str
    run: int  # 1 ... --repeat
    injected_ms: int
    restored_ms: int
    recovery_s: float | None


def _phase_rows(
    topic: Ledger, broker: BrokerCheck, faults: list[FaultRun], stores: dict[str, StoreCheck]
) -> list[dict[str, Any]]:
    starts = [fault.injected_ms for fault in faults]
    ingest_ms = broker.acknowledged

    def phase(key: TickKey) -> int:  # 0: before the first fault, i: fault i
        return bisect.bisect_right(starts, ingest_ms[key])

    names = [BASELINE, *(fault.label for fault in faults)]
    counts = ("ticks", "lost_by_broker", "lost_by_us", "duplicated", "resent")
    rows: list[dict[str, Any]] = [{"fault": name, **dict.fromkeys(counts, 0)} for name in names]
    for key in ingest_ms:
        rows[phase(key)]["ticks"] += 1
    for key in broker.lost:
        rows[phase(key)]["lost_by_broker"] += 1
    for key, copies in topic.resent.items():
        rows[phase(key)]["resent"] += copies
    for store, check in stores.items():
        for row in rows:
            row.setdefault(f"lost_{store}", 0)
            row.setdefault(f"duplicated_{store}", 0)
        for key in check.lost:
            rows[phase(key)][f"lost_{store}"] += 1
        for key, extra in check.duplicated.items():
            if key in ingest_ms:
                rows[phase(key)][f"duplicated_{store}"] += extra
    lost_anywhere = set().union(*(check.lost for check in stores.values()))
    for key in lost_anywhere:
        rows[phase(key)]["lost_by_us"] += 1
    for row in rows:
        row["duplicated"] = sum(row[f"duplicated_{store}"] for store in stores)
    for row, fault in zip(rows[1:], faults, strict=True):
        until = (
            fault.injected_ms + fault.recovery_s * 1000
            if fault.recovery_s is not None
            else float("inf")
        )
        row["ticks_during"] = sum(
            1 for ms in ingest_ms.values() if fault.injected_ms <= ms <= until
        )
        row.update(asdict(fault))
    return rows


def results(
    *,
    options: dict[str, Any],
    topic: Ledger,
    broker: BrokerCheck,
    faults: list[FaultRun],
    stores: dict[str, StoreCheck],
    windows: WindowCheck,
    latest: LatestCheck,
    restarts: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Everything the run found, as JSON-ready data; `passed` says whether all is well."""
    rows = _phase_rows(topic, broker, faults, stores)
    passed = (
        all(
            row["lost_by_broker"] == 0 and row["lost_by_us"] == 0 and row["duplicated"] == 0
            for row in rows
        )
        and not windows.wrong
        and not latest.wrong
        and all(fault.recovery_s is not None for fault in faults)
        and all(check.unknown == 0 for check in stores.values())
    )
    return {
        "passed": passed,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "options": options,
        "faults": rows,
        "broker": broker.summary(),
        "topic": {
            "messages": topic.messages,
            "distinct_ticks": len(topic.ingest_ms),
            "resent_copies": sum(topic.resent.values()),
            "invalid": topic.invalid,
        },
        "stores": {name: check.summary() for name, check in stores.items()},
        "windows": windows.summary(),
        "latest": latest.summary(),
        "pipeline": restarts,
    }


def markdown(result: dict[str, Any]) -> str:
    """The table, and a few lines on the topic, the windows and the restarts."""
    o, topic, windows = result["options"], result["topic"], result["windows"]
    lines = [
        f"Chaos run {result['generated_at']} on {result['machine']['cores']} cores: "
        f"{o['rate']:.0f} ticks/s, {o['phase_seconds']:.0f} s between faults, outages "
        f"{o['outage_seconds']:.0f} s. Result: {'PASSED' if result['passed'] else 'FAILED'}.",
        "",
        "| fault | run | acknowledged during it | lost by the broker | lost by us "
        "| duplicated | resent | recovery s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["faults"]:
        during = row.get("ticks_during", row["ticks"])
        recovery = row.get("recovery_s", "-")
        if recovery is None:
            recovery = "not recovered"
        lines.append(
            f"| {row['fault']} | {row.get('run', '-')} | {during:,} | {row['lost_by_broker']} "
            f"| {row['lost_by_us']} | {row['duplicated']} | {row['resent']} | {recovery} |"
        )
    broker, latest = result["broker"], result["latest"]
    stores = ", ".join(
        f"{name}: {s['lost']} lost, {s['duplicated']} duplicated, {s['not_acknowledged']} "
        "never acknowledged"
        for name, s in result["stores"].items()
    )
    restarts = ", ".join(
        f"{name} {r['restarts']} restarts ({r['failures']} after failing by itself)"
        for name, r in result["pipeline"].items()
    )
    lines += [
        "",
        f"Producers' ledgers: {broker['acknowledged']:,} acknowledged ticks, "
        f"{broker['lost_by_broker']} lost by the broker, {broker['not_in_ledger']} in the topic "
        "only (unwritten ledger lines of a killed producer).",
        f"Topic: {topic['messages']:,} messages, {topic['distinct_ticks']:,} distinct ticks "
        f"({topic['resent_copies']} resent copies, {topic['invalid']} invalid). {stores}.",
        f"Windows ({o['window_seconds']} s, sliding {o['slide_seconds']} s) against a "
        f"recomputation from MongoDB: {windows['checked']:,} checked, {windows['wrong']} with a "
        f"wrong tick count or mean; latest rows: {latest['checked']} checked, "
        f"{latest['wrong']} wrong.",
        f"Pipeline: {restarts}.",
    ]
    return "\n".join(lines) + "\n"


def write(
    result: dict[str, Any],
    directory: Path,
    *,
    name: str = "chaos",
    render: Callable[[dict[str, Any]], str] = markdown,
) -> tuple[Path, Path]:
    """`<name>.json` and `<name>.md` (the table `render` makes) under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, table_path = directory / f"{name}.json", directory / f"{name}.md"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    table_path.write_text(render(result))
    return json_path, table_path
