"""Metadata the UI shows well: typed tables, and flat numbers it plots over time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

# A table's columns: (row key, Dagster column type), e.g. ("count", "int").
Columns = Sequence[tuple[str, str]]
TIME_MS = "_time_ms"  # a row key ending so holds epoch milliseconds: shown as a UTC time


def _shown(key: str) -> str:
    return key.removesuffix("_ms") if key.endswith(TIME_MS) else key


def _value(key: str, value: Any) -> str | int | float | bool | None:
    if value is not None and key.endswith(TIME_MS):
        moment = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        return moment.isoformat(sep=" ", timespec="milliseconds")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Columns) -> dg.TableMetadataValue:
    """Rows as a table the UI renders with its schema; `*_time_ms` keys as UTC times.

    A time column is named without its `_ms` (`from_time_ms` shows as `from_time`): what
    it holds is a time, not a count of milliseconds.
    """
    schema = dg.TableSchema(columns=[dg.TableColumn(_shown(key), kind) for key, kind in columns])
    records = [
        dg.TableRecord({_shown(key): _value(key, row.get(key)) for key, _ in columns})
        for row in rows
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


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
