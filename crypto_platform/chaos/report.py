"""The chaos results: per fault, ticks during it, lost, duplicated and recovery time.

Lost and duplicated ticks are counted by the phase their ingest time falls in, from one
fault's injection to the next one's (ticks before the first fault form the first row), so
every tick of the run belongs to exactly one row. "Ticks during it" are those ingested
between injection and recovery.
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

from crypto_platform.chaos.compare import Ledger, StoreCheck, TickKey, WindowCheck

BASELINE = "none (before the first fault)"


@dataclass(frozen=True)
class FaultRun:
    """One applied fault and when things happened (epoch ms; recovery in s, None: never)."""

    key: str
    label: str
    injected_ms: int
    restored_ms: int
    recovery_s: float | None


def _phase_rows(
    ledger: Ledger, faults: list[FaultRun], stores: dict[str, StoreCheck]
) -> list[dict[str, Any]]:
    starts = [fault.injected_ms for fault in faults]

    def phase(key: TickKey) -> int:  # 0: before the first fault, i: fault i
        return bisect.bisect_right(starts, ledger.ingest_ms[key])

    names = [BASELINE, *(fault.label for fault in faults)]
    rows: list[dict[str, Any]] = [
        {"fault": name, "ticks": 0, "lost": 0, "duplicated": 0} for name in names
    ]
    for key in ledger.ingest_ms:
        rows[phase(key)]["ticks"] += 1
    for store, check in stores.items():
        for row in rows:
            row.setdefault(f"lost_{store}", 0)
            row.setdefault(f"duplicated_{store}", 0)
        for key in check.lost:
            rows[phase(key)][f"lost_{store}"] += 1
        for key, extra in check.duplicated.items():
            if key in ledger.ingest_ms:
                rows[phase(key)][f"duplicated_{store}"] += extra
    lost_anywhere = set().union(*(check.lost for check in stores.values()))
    for key in lost_anywhere:
        rows[phase(key)]["lost"] += 1
    for row in rows:
        row["duplicated"] = sum(row[f"duplicated_{store}"] for store in stores)
    for row, fault in zip(rows[1:], faults, strict=True):
        until = (
            fault.injected_ms + fault.recovery_s * 1000
            if fault.recovery_s is not None
            else float("inf")
        )
        row["ticks_during"] = sum(
            1 for ms in ledger.ingest_ms.values() if fault.injected_ms <= ms <= until
        )
        row.update(asdict(fault))
    return rows


def results(
    *,
    options: dict[str, Any],
    ledger: Ledger,
    faults: list[FaultRun],
    stores: dict[str, StoreCheck],
    windows: WindowCheck,
    restarts: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Everything the run found, as JSON-ready data; `passed` says whether all is well."""
    rows = _phase_rows(ledger, faults, stores)
    passed = (
        all(row["lost"] == 0 and row["duplicated"] == 0 for row in rows)
        and not windows.wrong
        and all(fault.recovery_s is not None for fault in faults)
        and all(check.unknown == 0 for check in stores.values())
    )
    return {
        "passed": passed,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "options": options,
        "faults": rows,
        "topic": {
            "messages": ledger.messages,
            "distinct_ticks": len(ledger.ingest_ms),
            "resent_copies": sum(ledger.resent.values()),
            "invalid": ledger.invalid,
        },
        "stores": {name: check.summary() for name, check in stores.items()},
        "windows": windows.summary(),
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
        "| fault | ticks during it | lost | duplicated | recovery s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["faults"]:
        during = row.get("ticks_during", row["ticks"])
        recovery = row.get("recovery_s", "-")
        if recovery is None:
            recovery = "not recovered"
        lines.append(
            f"| {row['fault']} | {during:,} | {row['lost']} | {row['duplicated']} | {recovery} |"
        )
    stores = ", ".join(
        f"{name}: {s['lost']} lost, {s['duplicated']} duplicated, {s['not_in_topic']} not in "
        "the topic"
        for name, s in result["stores"].items()
    )
    restarts = ", ".join(
        f"{name} {r['restarts']} restarts ({r['failures']} after failing by itself)"
        for name, r in result["pipeline"].items()
    )
    lines += [
        "",
        f"Topic: {topic['messages']:,} messages, {topic['distinct_ticks']:,} distinct ticks "
        f"({topic['resent_copies']} resent copies, {topic['invalid']} invalid). {stores}.",
        f"Windows ({o['window_seconds']} s, sliding {o['slide_seconds']} s): "
        f"{windows['checked']:,} checked, {windows['wrong']} with a wrong tick count.",
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
