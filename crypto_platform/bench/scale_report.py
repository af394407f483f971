"""The scale run's results: scale.json (every time at each size, the headline) and scale.md.

`scale_slowest_ratio` is the worst of (time at the large size / time at the small) over
every report and check; `scale_slowest_s` the slowest time at the large size. Times under
`NOISE_FLOOR_S` count as that much in the ratios: below it, the difference between two
runs on this shared 2-core machine is the scheduler's, not the query's.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from crypto_platform.bench.scale import LOAD_BUDGET_S, REPEATS
from crypto_platform.bench.scale_history import STEP_MS
from crypto_platform.chaos.report import write as write_results

NOISE_FLOOR_S = 0.05
TARGETS = {"scale_slowest_ratio": ("<=", 1.5), "scale_slowest_s": ("<", 5.0)}


def ratio(small_s: float, large_s: float) -> float:
    """Large over small, each at least `NOISE_FLOOR_S`."""
    return round(max(large_s, NOISE_FLOOR_S) / max(small_s, NOISE_FLOOR_S), 2)


def results(run: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    """The rows (each item at both sizes, with its ratio), the headline and its verdict."""
    small, large = run["sizes"]
    rows = [
        {"name": name, "small_s": seconds, "large_s": large["seconds"][name],
         "ratio": ratio(seconds, large["seconds"][name])}
        for name, seconds in small["seconds"].items()
    ]  # fmt: skip
    worst = max(rows, key=lambda row: row["ratio"])
    slowest = max(rows, key=lambda row: row["large_s"])
    headline = {"scale_slowest_ratio": worst["ratio"], "scale_slowest_s": slowest["large_s"]}
    met = {
        key: value <= TARGETS[key][1] if TARGETS[key][0] == "<=" else value < TARGETS[key][1]
        for key, value in headline.items()
    }
    return {
        **headline,
        "scale_slowest_ratio_of": worst["name"],
        "scale_slowest_s_of": slowest["name"],
        "targets": {key: f"{op} {bound}" for key, (op, bound) in TARGETS.items()},
        "targets_met": met,
        "passed": all(met.values()),
        "quick": quick,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "options": {
            "ticks_wanted": run["wanted"],
            "ticks_per_hour": 3_600_000 // STEP_MS,
            "load_budget_s": LOAD_BUDGET_S,
            "repeats": REPEATS,
            "noise_floor_s": NOISE_FLOOR_S,
        },
        "sizes": run["sizes"],
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    small, large = result["sizes"]
    wanted = result["options"]["ticks_wanted"][1]
    short = (
        f" (of {wanted:,} wanted: what loaded within {LOAD_BUDGET_S // 60} minutes)"
        if large["ticks"] < wanted
        else ""
    )
    ok = {key: "met" if value else "MISSED" for key, value in result["targets_met"].items()}
    lines = [
        f"Scale run {result['generated_at']} on {result['cores']} cores: history of "
        f"{small['ticks']:,} ticks ({small['span_days']} days) and {large['ticks']:,} "
        f"({large['span_days']} days){short}, at {result['options']['ticks_per_hour']:,} "
        f"ticks an hour, loaded in {large['load_s_total']:.0f} s. Each time is the median of "
        f"{REPEATS} runs after a warm-up; ratios count times under {NOISE_FLOOR_S} s as "
        f"{NOISE_FLOOR_S} s.",
        "",
        f"scale_slowest_ratio {result['scale_slowest_ratio']} "
        f"({result['scale_slowest_ratio_of']}; target <= 1.5: {ok['scale_slowest_ratio']}); "
        f"scale_slowest_s {result['scale_slowest_s']} ({result['scale_slowest_s_of']}; "
        f"target < 5: {ok['scale_slowest_s']}).",
        "",
        f"| report or check | s at {small['ticks']:,} | s at {large['ticks']:,} | ratio | "
        "check passed (small, large) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in result["rows"]:
        verdicts = [size["checks_passed"].get(row["name"]) for size in (small, large)]
        shown = "-" if verdicts[0] is None else ", ".join(str(v).lower() for v in verdicts)
        lines.append(
            f"| {row['name']} | {row['small_s']:.3f} | {row['large_s']:.3f} | "
            f"{row['ratio']} | {shown} |"
        )
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """`scale.json` and `scale.md` (`scale-quick.*` for a quick run) under `directory`."""
    name = "scale-quick" if result["quick"] else "scale"
    return write_results(result, directory, name=name, render=markdown)
