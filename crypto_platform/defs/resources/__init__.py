"""Resources: one per external system, shared by every domain's assets, checks and sensors.

The resources are built when the definitions load. A field whose `CRYPTO_*` variable is
set then (not empty: as for the settings, empty means unset) is bound to it, `dg.EnvVar`
(`dg.EnvVar.int` for an int field): the UI names the variable, never its value, and
Dagster reads the value when a run, or a sensor's evaluation, starts. Every other field
keeps its default, its setting's own, which the UI shows too; a run then reads the setting
from its environment. Nothing is given as a value read here, so no secret (password,
key, the MongoDB URI) ever shows in the UI or in a run's config.
"""

import os

import dagster as dg

from crypto_platform.defs.resources.clients import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    PriceSourceResource,
    SettingsResource,
    SparkResource,
)
from crypto_platform.settings import env_variable

RESOURCE_TYPES: dict[str, type[SettingsResource]] = {
    "kafka": KafkaResource,
    "mongo": MongoResource,
    "price_source": PriceSourceResource,
    "cassandra": CassandraResource,
    "spark": SparkResource,
}


def bound_to_environment(resource_type: type[SettingsResource]) -> dict[str, object]:
    """The fields of `resource_type` whose variable is set now, each bound to its variable."""
    bound: dict[str, object] = {}
    for field, setting in resource_type.settings_map().items():
        variable = env_variable(setting)
        if not os.environ.get(variable):
            continue
        is_int = resource_type.model_fields[field].annotation is int
        bound[field] = dg.EnvVar.int(variable) if is_int else dg.EnvVar(variable)
    return bound


def build_resources() -> dict[str, SettingsResource]:
    """Every resource, its fields bound to the `CRYPTO_*` variables set now."""
    return {key: kind(**bound_to_environment(kind)) for key, kind in RESOURCE_TYPES.items()}


defs = dg.Definitions(resources=build_resources())
