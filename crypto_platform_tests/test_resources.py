"""The resources as the Dagster UI shows them, and the settings a run gets from them (no servers).

The UI's view is the code location's snapshot of its resources: each field's default and
description, and the value each resource was given (`configured_values`), a variable
shown by its name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import (
    RepositorySnap,
    ResourceConfigEnvVarSnap,
    ResourceSnap,
)
from dagster._serdes import serialize_value

from crypto_platform.definitions import defs
from crypto_platform.defs.resources import RESOURCE_TYPES, build_resources
from crypto_platform.defs.resources.clients import (
    CassandraResource,
    settings_for,
)
from crypto_platform.settings import Settings, env_variable, load_settings

SECRETS = {
    "CRYPTO_KAFKA_SASL_PASSWORD": "kafka-s3cret",
    "CRYPTO_CASSANDRA_PASSWORD": "cassandra-s3cret",
    "CRYPTO_COINRANKING_API_KEY": "coinranking-s3cret",
    "CRYPTO_MONGO_URI": "mongodb://bob:mongo-s3cret@db.example:27017/",
}
# Every field that shows a setting: (resource key, field) -> setting.
SETTING_FIELDS = {
    (key, field): setting
    for key, kind in RESOURCE_TYPES.items()
    for field, setting in kind.settings_map().items()
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable of a resource field set, whatever the environment the tests run in."""
    for setting in SETTING_FIELDS.values():
        monkeypatch.delenv(env_variable(setting), raising=False)
    return monkeypatch


def ui_snapshot(resources: Mapping[str, object]) -> RepositorySnap:
    """What the code location hands the UI, for these resources."""
    return RepositorySnap.from_def(dg.Definitions(resources=resources).get_repository_def())


def ui_resources(resources: Mapping[str, object]) -> dict[str, ResourceSnap]:
    """The resources as the UI shows them."""
    return {resource.name: resource for resource in ui_snapshot(resources).resources or []}


def test_the_definitions_hold_one_resource_per_system() -> None:
    assert {key: type(resource) for key, resource in (defs.resources or {}).items()} == (
        RESOURCE_TYPES
    )
    assert SETTING_FIELDS[("kafka", "sasl_password")] == "kafka_sasl_password"
    assert SETTING_FIELDS[("cassandra", "password")] == "cassandra_password"
    assert SETTING_FIELDS[("price_source", "coinranking_api_key")] == "coinranking_api_key"
    assert SETTING_FIELDS[("mongo", "uri")] == "mongo_uri"


def test_every_field_shows_its_settings_default_and_description(
    clean_env: pytest.MonkeyPatch,
) -> None:
    shown = ui_resources(build_resources())

    for (key, field), setting in SETTING_FIELDS.items():
        info = Settings.model_fields[setting]
        (snap,) = [f for f in shown[key].config_field_snaps if f.name == field]
        assert snap.description is not None and snap.description.startswith(info.description)
        assert env_variable(setting) in snap.description
        assert not snap.is_required and snap.default_value_as_json_str is not None
        default = json.loads(snap.default_value_as_json_str)
        # The value given, unset: the default.
        assert json.loads(shown[key].configured_values[field]) == default, (key, field)
        if default is not None:  # the settings read the default shown as their own
            assert getattr(load_settings(**{setting: default}), setting) == info.default
    # As their variables hold them: a list comma-separated, the rate as text.
    cassandra, source = (
        shown["cassandra"].configured_values,
        shown["price_source"].configured_values,
    )
    assert json.loads(cassandra["hosts"]) == "127.0.0.1"
    assert json.loads(cassandra["port"]) == 9042
    assert json.loads(source["symbols"]) == "BTC,ETH,SOL"
    assert json.loads(source["rate"]) == "10.0"
    assert json.loads(shown["kafka"].configured_values["sasl_password"]) is None


def test_a_variable_set_when_the_definitions_load_shows_by_name_never_its_value(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for variable, value in {
        **SECRETS,
        "CRYPTO_CASSANDRA_PORT": "9142",
        "CRYPTO_CASSANDRA_HOSTS": "node-a,node-b",
        "CRYPTO_SYMBOLS": "BTC,DOGE",
        "CRYPTO_SIMULATED_RATE": "25.5",
        "CRYPTO_SPARK_MASTER": "",  # empty: unset, as for the settings
    }.items():
        clean_env.setenv(variable, value)
    resources = build_resources()

    shown = ui_resources(resources)

    bound = {
        (key, field): value.name
        for key, snap in shown.items()
        for field, value in snap.configured_values.items()
        if isinstance(value, ResourceConfigEnvVarSnap)
    }
    assert bound == {
        ("kafka", "sasl_password"): "CRYPTO_KAFKA_SASL_PASSWORD",
        ("cassandra", "password"): "CRYPTO_CASSANDRA_PASSWORD",
        ("price_source", "coinranking_api_key"): "CRYPTO_COINRANKING_API_KEY",
        ("mongo", "uri"): "CRYPTO_MONGO_URI",
        ("cassandra", "port"): "CRYPTO_CASSANDRA_PORT",
        ("cassandra", "hosts"): "CRYPTO_CASSANDRA_HOSTS",
        ("price_source", "symbols"): "CRYPTO_SYMBOLS",
        ("price_source", "rate"): "CRYPTO_SIMULATED_RATE",
    }
    cassandra = resources["cassandra"]
    assert isinstance(cassandra, CassandraResource) and isinstance(cassandra.password, dg.EnvVar)
    # Nowhere in what the UI gets, as a value given or as a default.
    everything = serialize_value(ui_snapshot(resources))
    for secret in [*SECRETS.values(), "mongo-s3cret"]:
        assert secret not in everything


def test_a_run_reads_the_variables_when_it_starts_and_gets_them_as_settings(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("CRYPTO_CASSANDRA_PORT", "9142")
    clean_env.setenv("CRYPTO_CASSANDRA_HOSTS", "node-a, node-b")
    clean_env.setenv("CRYPTO_CASSANDRA_PASSWORD", "cassandra-s3cret")
    cassandra = build_resources()["cassandra"]
    clean_env.setenv("CRYPTO_CASSANDRA_PORT", "9143")  # after the definitions loaded

    with dg.build_resources({"cassandra": cassandra}) as resources:  # as a run starts
        in_run = settings_for(resources.cassandra)
    by_hand = settings_for(cassandra)  # outside a run: the variables read now

    for settings in (in_run, by_hand):
        assert settings.cassandra_port == 9143
        assert settings.cassandra_hosts == ["node-a", "node-b"]
        assert settings.cassandra_password is not None
        assert settings.cassandra_password.get_secret_value() == "cassandra-s3cret"


def test_a_field_given_overrides_its_setting_and_one_at_its_default_leaves_it(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("CRYPTO_CASSANDRA_KEYSPACE", "from_env")
    clean_env.setenv("CRYPTO_CASSANDRA_JMX_PORT", "7299")

    given = settings_for(CassandraResource(keyspace="given", hosts="a,b"))
    default = settings_for(CassandraResource())

    assert (given.cassandra_keyspace, given.cassandra_hosts) == ("given", ["a", "b"])
    assert given.cassandra_jmx_port == 7299
    assert (default.cassandra_keyspace, default.cassandra_jmx_port) == ("from_env", 7299)
