"""Metadata the UI shows well: Markdown tables, and flat numbers it plots over time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column.endswith("_time_ms"):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dg.MetadataValue:
    """Rows as a Markdown table (the UI renders it); `_time_ms` columns as UTC times."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(c, row.get(c)) for c in columns) + " |" for row in rows]
    if not rows:
        lines.append("| " + " | ".join("-" for _ in columns) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def per_coin(rows: Sequence[Mapping[str, Any]], field: str) -> dict[str, float | int]:
    """`{field}_{symbol}` numbers, one plot per coin in the UI."""
    return {
        f"{field}_{row['symbol']}": row[field]
        for row in rows
        if isinstance(row.get(field), int | float)
    }


def flat_numbers(report: Mapping[str, Any], prefix: str = "") -> dict[str, float | int]:
    """Every number of a nested report as `a.b.c` keys (each one plotted by the UI)."""
    numbers: dict[str, float | int] = {}
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            numbers.update(flat_numbers(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers[name] = value
    return numbers
