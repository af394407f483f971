"""The stores' table metadata: `dagster/table_name` and `dagster/column_schema`.

Schemas are derived from what defines them: `Tick` (the one definition of a tick) for the
topic and the collection, the dead letters' header names for the DLQ, the CQL of
`storage.cassandra.TABLES` for the Cassandra tables; a field added there shows in the UI
without an edit here. Names are the design's (the settings' defaults: `CRYPTO_*` may
rename them), prefixed by their system: the topic and the collection are both called
crypto.prices, and Dagster takes assets of one table name for one table.
"""

import re
from typing import Any

import dagster as dg

from crypto_platform.settings import Settings
from crypto_platform.storage.cassandra import TABLES
from crypto_platform.storage.mongo_queries import HANDED_AT
from crypto_platform.streaming.dead_letters import (
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    ORIGIN_TOPIC,
    REASON,
    TRUNCATED,
)
from crypto_platform.ticks import Tick

JSON_TYPES = {"string": "string", "integer": "int", "number": "float", "boolean": "bool"}


def _column(name: str, field: dict[str, Any]) -> dg.TableColumn:
    kinds = [option["type"] for option in field.get("anyOf", [field]) if option["type"] != "null"]
    # Absent from a message or document only when unset: the optional fields default to None.
    nullable = Tick.model_fields[name].default is None
    return dg.TableColumn(
        name, JSON_TYPES[kinds[0]], constraints=dg.TableColumnConstraints(nullable=nullable)
    )


def _tick_columns() -> list[dg.TableColumn]:
    properties = Tick.model_json_schema()["properties"]
    return [_column(name, field) for name, field in properties.items()]


def _required(name: str, kind: str, description: str) -> dg.TableColumn:
    return dg.TableColumn(
        name, kind, description, constraints=dg.TableColumnConstraints(nullable=False)
    )


# A message of the tick topic: the tick as JSON, keyed by its symbol.
TICK_MESSAGE = dg.TableSchema(columns=_tick_columns())

# A document of the prices collection: the tick's fields and what the sink adds.
PRICE_DOCUMENT = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "_id",
            "string",
            "source:symbol:event_time_ms, the tick's identity",
            constraints=dg.TableColumnConstraints(nullable=False, unique=True),
        ),
        *_tick_columns(),
        _required("event_time", "datetime", "event_time_ms as a date (what a TTL index reads)"),
        dg.TableColumn(
            HANDED_AT,
            "int",
            "when the sink handed the tick's batch to MongoDB, in ms "
            "(stored_at_ms in documents of earlier releases)",
        ),
    ]
)

# A dead letter: the refused message's own key and bytes; headers say why and where from.
DEAD_LETTER = dg.TableSchema(
    columns=[
        dg.TableColumn("key", "bytes", "the original message's key"),
        _required("value", "bytes", "the original message's bytes"),
        _required(REASON, "string", "why the sink refused it (header)"),
        _required(ORIGIN_TOPIC, "string", "the topic it came from (header)"),
        _required(ORIGIN_PARTITION, "int", "its partition there (header)"),
        _required(ORIGIN_OFFSET, "int", "its offset there (header)"),
        dg.TableColumn(TRUNCATED, "int", "its original size, when stored truncated (header)"),
    ]
)


def design_name(*settings: str) -> str:
    """A store object's name as the design gives it (the settings' defaults), dot-joined."""
    return ".".join(str(Settings.model_fields[setting].default) for setting in settings)


def table_metadata(system: str, name: str, schema: dg.TableSchema) -> dict[str, Any]:
    """The metadata naming a store object (prefixed by its system) and its columns."""
    return {"dagster/table_name": f"{system}.{name}", "dagster/column_schema": schema}


def cassandra_table(table: str) -> dict[str, Any]:
    """A Cassandra table's metadata: its columns and their CQL types, read from its CQL."""
    columns = re.findall(r"\b(\w+) (text|timestamp|double|bigint|int)\b", TABLES[table])
    schema = dg.TableSchema(columns=[dg.TableColumn(name, cql) for name, cql in columns])
    return table_metadata("cassandra", f"{design_name('cassandra_keyspace')}.{table}", schema)
