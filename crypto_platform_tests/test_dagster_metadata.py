"""Table metadata: the reports' and statistics' typed tables, and the stores' schemas."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from crypto_platform.defs.reports.metadata import table
from crypto_platform.defs.statistics.assets import JUMP_COLUMNS
from crypto_platform.defs.streams.schemas import cassandra_table

MOVED_AT = dt.datetime(2026, 3, 1, 10, 15, 2, 123000, tzinfo=dt.UTC)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_table_carries_its_schema_and_shows_times_as_utc_times() -> None:
    jump = {"symbol": "BTC", "from_time_ms": ms(MOVED_AT), "to_time_ms": ms(MOVED_AT) + 2000,
            "from_price": 100.0, "to_price": 102.0, "move_pct": 2.0, "unlisted": 1}  # fmt: skip

    value = table([jump], JUMP_COLUMNS)

    assert isinstance(value, dg.TableMetadataValue)
    assert value.schema is not None
    assert [(column.name, column.type) for column in value.schema.columns] == [
        ("symbol", "string"), ("from_time", "datetime"), ("to_time", "datetime"),
        ("from_price", "float"), ("to_price", "float"), ("move_pct", "float"),
    ]  # fmt: skip
    assert value.records[0].data == {
        "symbol": "BTC", "from_time": "2026-03-01 10:15:02.123+00:00",
        "to_time": "2026-03-01 10:15:04.123+00:00", "from_price": 100.0, "to_price": 102.0,
        "move_pct": 2.0,
    }  # fmt: skip


def test_a_missing_value_is_empty_and_no_rows_is_an_empty_table() -> None:
    assert table([{"symbol": "ETH"}], JUMP_COLUMNS).records[0].data["move_pct"] is None
    empty = table([], JUMP_COLUMNS)
    assert empty.records == [] and empty.schema is not None and len(empty.schema.columns) == 6


def test_a_cassandra_tables_schema_is_read_from_its_cql() -> None:
    metadata = cassandra_table("latest_aggregates")
    columns = {c.name: c.type for c in metadata["dagster/column_schema"].columns}

    assert metadata["dagster/table_name"] == "cassandra.crypto.latest_aggregates"
    assert columns["symbol"] == "text" and columns["window_seconds"] == "int"
    assert columns["tick_count"] == "bigint" and columns["window_start"] == "timestamp"
    assert len(columns) == 14
