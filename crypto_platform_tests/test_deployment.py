"""The Docker deployment (docker/), checked without a Docker engine.

What can be checked here is: the compose file against the compose specification's JSON
schema, pinned images, every setting passed to the platform's containers and to Dagster's
runs, addresses that point at the right services and ports, docker/dagster.yaml against
Dagster's instance schema, the Prometheus and Grafana files, and the dashboard's queries
against what the real API's /metrics exposes. Only the last two tests need servers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import RunLauncher
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client.parser import text_string_to_metric_families

from crypto_platform.api.libraries import LIBRARIES
from crypto_platform.cli import cli
from crypto_platform.errors import ConfigurationError
from crypto_platform.reports.stores import open_kafka
from crypto_platform.settings import Settings, load_settings
from crypto_platform.settings_catalog import LOCAL_ONLY
from crypto_platform.sources import simulated_mark
from crypto_platform.storage import cassandra, mongo
from crypto_platform.streaming.dead_letters import DeadLetters
from crypto_platform.streaming.producer import TickProducer
from crypto_platform.streaming.sink import MongoSink
from crypto_platform.streaming.topics import admin_client, describe
from crypto_platform_tests.api_helpers import NOW, running_api, tick_row, write_ticks, write_window
from crypto_platform_tests.conftest import REPO, run_cli
from crypto_platform_tests.streaming_helpers import stored_count

DOCKER = REPO / "docker"
# The compose specification's JSON schema, as the pinned docker-compose wheel ships it.
COMPOSE_WHEEL = "docker-compose==1.29.2"
SPEC_MEMBER = "compose/config/compose_spec.json"
SPEC_CACHE = REPO / ".vendor" / "compose-spec"
VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's `${VAR:-default}` with nothing set: the default (`${VAR:?...}`: a stand-in)."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: m.group(3) if m.group(2) == "-" else "set-by-user", value)
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    return value


def load_yaml(name: str) -> Any:
    return yaml.safe_load((DOCKER / name).read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml("compose.yaml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def platform_services(services: dict[str, Any]) -> dict[str, Any]:
    return {
        name: service
        for name, service in services.items()
        if service["image"].startswith("crypto-platform:")
    }


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as its container sees it with an empty .env."""
    return {key: str(value) for key, value in interpolate(service["environment"]).items()}


def settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the code builds inside that service's container."""
    for key in [key for key in os.environ if key.startswith("CRYPTO_")]:
        monkeypatch.delenv(key)
    for key, value in env_of(service).items():
        monkeypatch.setenv(key, value)
    return load_settings()


@pytest.fixture(scope="module")
def compose_spec() -> dict[str, Any]:
    """The schema from the pinned wheel, downloaded once into .vendor/ (PyPI, never a URL)."""
    wheels = sorted(SPEC_CACHE.glob("docker_compose-1.29.2-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", COMPOSE_WHEEL,
             "-d", str(SPEC_CACHE)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        wheels = sorted(SPEC_CACHE.glob("docker_compose-1.29.2-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        return json.loads(wheel.read(SPEC_MEMBER))


def test_the_compose_file_follows_the_compose_specification(
    compose: dict[str, Any], compose_spec: dict[str, Any]
) -> None:
    validator = jsonschema.Draft201909Validator(compose_spec)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]

    assert errors == []


def test_a_broken_compose_file_fails_the_specification(
    compose: dict[str, Any], compose_spec: dict[str, Any]
) -> None:
    """The schema really checks: a misspelt key and a bad condition are refused."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    broken["services"]["api"]["depends_on"]["kafka-topics"]["condition"] = "done"

    assert len(list(jsonschema.Draft201909Validator(compose_spec).iter_errors(broken))) == 2


def test_every_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    images = {name: interpolate(service["image"]) for name, service in services.items()}
    dockerfile = (DOCKER / "Dockerfile").read_text()
    base_images = re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

    for image in [*images.values(), *base_images]:
        name, _, tag = image.rpartition(":")
        assert name and re.fullmatch(r"v?\d+(\.\d+)+(-[\w.-]+)?", tag), image
    assert len(base_images) == 2
    assert re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)[-1] == "${PYTHON_IMAGE}"
    # The platform's image is tagged with the package's version.
    assert {images[name] for name in platform_services(services)} == {f"crypto-platform:{version}"}


def test_the_image_leaves_out_the_local_servers_and_test_tools() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lock = (REPO / "requirements" / "deploy.lock").read_text()
    # Only entries followed by their hashes count as locked.
    hashed_entry = r"^([\w.-]+)(?:\[[\w,.-]+\])?==([^\s;]+)[^\n]*\\\n    --hash=sha256:[0-9a-f]{64}"
    locked = {
        canonicalize_name(name): version
        for name, version in re.findall(hashed_entry, lock, flags=re.MULTILINE)
    }
    pinned = {
        canonicalize_name(req.name): str(req.specifier).removeprefix("==")
        for req in map(Requirement, [*project["dependencies"], *extras["deploy"]])
    }
    left_out = {
        canonicalize_name(req.name) for req in map(Requirement, [*extras["local"], *extras["dev"]])
    } - {"crypto-platform"}

    # The dependencies as the deploy lock pins them, every hash checked; then the wheel.
    assert re.findall(r"pip install (.+)", dockerfile) == [
        "--require-hashes -r /tmp/deploy.lock",
        "--no-deps /tmp/wheels/crypto_platform-*.whl && pip check",
    ]
    assert "source=requirements/deploy.lock,target=/tmp/deploy.lock" in dockerfile
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in dockerfile
    # The lock holds the runtime dependencies and the `deploy` extra at pyproject's pins
    # (`make lock` after changing them), each with its hashes, and nothing of `local`, `dev`.
    assert {name: locked.get(name) for name in pinned} == pinned
    assert len(re.findall(r"^[\w.-]+(\[.*\])?==", lock, flags=re.MULTILINE)) == len(locked) > 0
    assert not left_out & set(locked)
    assert not {re.split(r"[=<>\[]", req)[0] for req in extras["deploy"]} & {
        re.split(r"[=<>\[]", req)[0] for req in extras["local"]
    }
    assert "npm ci --prefix crypto_platform/api/vendor" in dockerfile
    assert re.search(r"^USER crypto$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^HEALTHCHECK ", dockerfile, flags=re.MULTILINE)


def test_the_package_imports_without_the_local_extra() -> None:
    """What the image runs works with noida-db and SecantusDB absent."""
    code = (
        "import sys; sys.modules.update(noida_db=None, secantus=None)\n"
        "import crypto_platform.cli, crypto_platform.definitions, crypto_platform.api.app\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert done.returncode == 0, done.stderr


def test_every_setting_reaches_the_containers_and_is_documented(
    compose: dict[str, Any],
) -> None:
    passed = compose["x-crypto-env"]
    in_compose = {key for key in passed if key.startswith("CRYPTO_")}
    example = (DOCKER / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?(CRYPTO_\w+)=", example, flags=re.MULTILINE))
    wanted = {f"CRYPTO_{name.upper()}" for name in Settings.model_fields} - {
        f"CRYPTO_{name.upper()}" for name in LOCAL_ONLY
    }
    # Those a user sets in .env (the rest are the compose services' own addresses).
    tunable = {key for key in in_compose if str(passed[key]).startswith(f"${{{key}")}

    assert sorted(wanted - in_compose) == []
    assert sorted(tunable - documented) == []
    # Nothing stale: every variable named there is one the code reads.
    assert sorted((in_compose | documented) - wanted) == []


def test_every_platform_service_and_every_run_gets_the_same_settings(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    everything = compose["x-crypto-env"]
    forwarded = load_yaml("dagster.yaml")["run_launcher"]["config"]["env_vars"]

    for name, service in platform_services(services).items():
        missing = set(everything) - set(service["environment"])
        assert not missing, f"{name} lacks {sorted(missing)}"
    # The run launcher forwards each by name (an unset one would fail the launch: compose
    # sets every one, empty meaning the default).
    assert sorted(forwarded) == sorted(everything)
    assert all(value is not None for value in everything.values())


def test_the_settings_point_at_the_compose_services_and_ports(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(services["api"], monkeypatch)
    kafka = env_of(services["kafka"])
    mongo_command = interpolate(services["mongo"]["command"])

    host, _, port = settings.kafka_bootstrap_servers.partition(":")
    assert host in services and f"PLAINTEXT://{host}:{port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//:{port}" in kafka["KAFKA_LISTENERS"]

    uri = urlsplit(settings.mongo_uri)
    replica_set = parse_qs(uri.query)["replicaSet"][0]
    assert uri.hostname in services and (uri.port or 27017) == 27017
    assert mongo_command[mongo_command.index("--replSet") + 1] == replica_set
    assert env_of(services["mongo-init"])["MONGO_REPLICA_SET"] == replica_set
    assert env_of(services["mongo-init"])["MONGO_HOST"] == f"{uri.hostname}:27017"

    assert settings.cassandra_hosts == ["cassandra"] and settings.cassandra_port == 9042
    assert settings.cassandra_protocol_version == 5
    assert services["cassandra"]["image"].startswith("cassandra:5.")

    spark = urlsplit(settings.spark_master)
    master = services[spark.hostname or ""]["command"]
    assert spark.scheme == "spark" and master[master.index("--port") + 1] == str(spark.port)
    assert settings.spark_master in services["spark-worker"]["command"]

    published = [interpolate(port).rpartition(":")[2] for port in services["api"]["ports"]]
    assert published == [str(settings.api_port)] and settings.api_host == "0.0.0.0"

    code = services["dagster-code"]["command"]
    grpc = load_yaml("workspace.yaml")["load_from"][0]["grpc_server"]
    assert grpc["host"] == "dagster-code" and str(grpc["port"]) == code[code.index("-p") + 1]
    assert env_of(services["api"])["DAGSTER_POSTGRES_HOST"] in services


def test_the_run_launcher_uses_the_compose_network_and_checkpoint_volume(
    compose: dict[str, Any], services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_yaml("dagster.yaml")["run_launcher"]["config"]
    checkpoints = settings_of(services["api"], monkeypatch).checkpoint_root

    assert config["network"] == compose["networks"]["default"]["name"]
    volume, _, target = config["container_kwargs"]["volumes"][0].partition(":")
    assert volume == compose["volumes"]["spark-checkpoints"]["name"]
    assert Path(target) == checkpoints
    assert f"spark-checkpoints:{checkpoints}" in services["spark-worker"]["volumes"]


def test_the_simulated_high_water_mark_outlives_the_containers(
    compose: dict[str, Any], services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the data volume in every run (the producer's) and in one-off commands."""
    mark = simulated_mark(settings_of(services["api"], monkeypatch))
    volume = compose["volumes"]["platform-data"]["name"]
    run_mounts = load_yaml("dagster.yaml")["run_launcher"]["config"]["container_kwargs"]["volumes"]

    assert f"{volume}:{mark.parent}" in run_mounts
    assert f"platform-data:{mark.parent}" in services["api"]["volumes"]


def test_services_wait_for_health_or_completion(services: dict[str, Any]) -> None:
    def one_shot(service: dict[str, Any]) -> bool:
        return service.get("restart") == "no"

    def checked(service: dict[str, Any]) -> bool:
        check = service.get("healthcheck", {})
        return bool(check.get("test")) and not check.get("disable")

    for name, service in services.items():
        assert one_shot(service) or checked(service), f"{name} has no health check"
        for needed, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]
            if condition == "service_healthy":
                assert checked(services[needed]), f"{name} waits on unchecked {needed}"
            elif condition == "service_completed_successfully":
                assert one_shot(services[needed]), f"{name} waits on long-running {needed}"
    for one in ("kafka-topics", "mongo-init", "mongo-indexes", "cassandra-schema"):
        assert one_shot(services[one])


def test_data_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    used = {
        mount.split(":")[0]
        for service in services.values()
        for mount in service.get("volumes", [])
        if not mount.startswith(("/", "."))
    }

    assert used == set(compose["volumes"])
    for stateful in ("kafka", "mongo", "cassandra", "postgres", "prometheus", "grafana"):
        assert any(not m.startswith(("/", ".")) for m in services[stateful]["volumes"]), stateful


def test_no_secret_is_written_in_any_deployment_file(services: dict[str, Any]) -> None:
    secret = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY)", re.IGNORECASE)
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", str(value)), f"{name}: {key}"
    for line in (DOCKER / ".env.example").read_text().splitlines():
        key, _, value = line.partition("=")
        if secret.search(key) and not key.startswith("#"):
            assert value.strip() == "", line
    assert "docker/.env" in (REPO / ".gitignore").read_text().splitlines()


def test_the_commands_the_services_run_exist(services: dict[str, Any]) -> None:
    """Each command, with its options, as the installed CLIs parse it (`--help` comes last)."""
    runner = CliRunner()
    for name, service in platform_services(services).items():
        command = interpolate(service.get("command", ["crypto-platform", "api"]))
        if command[0] == "crypto-platform":
            done = runner.invoke(cli, [*command[1:], "--help"])
            assert done.exit_code == 0, f"{name}: {done.output}"
        elif command[0].startswith("dagster"):
            parsed = subprocess.run(
                [str(Path(sys.executable).parent / command[0]), *command[1:], "--help"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert parsed.returncode == 0, f"{name}: {parsed.stderr}"
        else:
            assert (Path(sys.executable).parent / command[0]).exists(), f"{name}: {command[0]}"


def test_the_python_health_checks_compile(services: dict[str, Any]) -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    image_check = json.loads(re.search(r"^  CMD (\[.*\])$", dockerfile, re.MULTILINE)[1])
    checks = [image_check] + [
        service["healthcheck"]["test"][1:]
        for service in services.values()
        if service.get("healthcheck", {}).get("test", [None, None])[1] == "python"
    ]

    assert len(checks) >= 5
    for check in checks:
        assert check[:2] == ["python", "-c"]
        compile(check[2], "<healthcheck>", "exec")


def test_dagster_yaml_is_a_valid_instance_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("HOST", "USER", "PASSWORD", "DB"):
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{variable}", "x")
    for variable in load_yaml("dagster.yaml")["run_launcher"]["config"]["env_vars"]:
        monkeypatch.setenv(variable, "")
    (tmp_path / "dagster.yaml").write_text((DOCKER / "dagster.yaml").read_text())

    config, _ = dagster_instance_config(str(tmp_path))
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    launcher = ConfigurableClassData(
        config["run_launcher"]["module"],
        config["run_launcher"]["class"],
        yaml.safe_dump(config["run_launcher"]["config"]),
    ).rehydrate(as_type=RunLauncher)

    assert storage.success, storage.errors
    assert type(launcher).__name__ == "DockerRunLauncher"
    assert config["run_monitoring"]["enabled"] is True


def test_dagster_yaml_has_the_local_instances_concurrency_pools() -> None:
    local, docker = yaml.safe_load((REPO / "dagster.yaml").read_text()), load_yaml("dagster.yaml")

    assert docker["concurrency"] == local["concurrency"]
    assert docker["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}


def test_the_prometheus_config_scrapes_the_api(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_yaml("prometheus/prometheus.yml")
    duration = re.compile(r"\d+(ms|s|m|h|d|w|y)")
    settings = settings_of(services["api"], monkeypatch)

    assert set(config) <= {"global", "scrape_configs", "rule_files", "alerting"}
    assert all(duration.fullmatch(value) for value in config["global"].values())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert len(jobs) == len(config["scrape_configs"])
    api = jobs["crypto-platform-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["static_configs"] == [{"targets": [f"api:{settings.api_port}"]}]
    mount = f"./prometheus/prometheus.yml:{services['prometheus']['command'][0].split('=')[1]}:ro"
    assert mount in services["prometheus"]["volumes"]


def test_grafana_is_provisioned_with_the_prometheus_source_and_the_dashboard(
    services: dict[str, Any],
) -> None:
    source = load_yaml("grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    provider = load_yaml("grafana/provisioning/dashboards/crypto_platform.yaml")["providers"][0]
    dashboard = json.loads((DOCKER / "grafana/dashboards/crypto_platform.json").read_text())
    prometheus_port = services["prometheus"]["ports"][0].rpartition(":")[2]

    assert source["url"] == f"http://prometheus:{prometheus_port}"
    assert (
        f"./grafana/dashboards:{provider['options']['path']}:ro" in services["grafana"]["volumes"]
    )
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {source["uid"]}
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("ticks per second", "lag", "dead letters", "freshness per coin", "latest prices"):
        assert topic in titles


def test_a_sasl_protocol_without_credentials_is_a_one_line_error() -> None:
    env = {"CRYPTO_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CRYPTO_KAFKA_SASL_USERNAME": ""}
    done = run_cli(load_settings(), "topics", env_override=env, timeout=60)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: CRYPTO_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs CRYPTO_KAFKA_SASL_USERNAME "
        "and CRYPTO_KAFKA_SASL_PASSWORD"
    ]


@pytest.mark.parametrize(
    "open_client",
    [TickProducer, DeadLetters, MongoSink, admin_client, describe, open_kafka],
    ids=["producer", "dead letters", "sink", "admin", "topics", "reports"],
)
def test_every_kafka_client_takes_the_security_settings(open_client: Any) -> None:
    """Each one builds its options through kafka_client_options (so none connects in clear)."""
    insecure = load_settings().model_copy(update={"kafka_security_protocol": "SASL_SSL"})

    with pytest.raises(ConfigurationError, match="CRYPTO_KAFKA_SASL_USERNAME"):
        open_client(insecure)


# --- These need the test stack (real servers) -------------------------------------------


@pytest.fixture
def fresh(stack_settings: Settings) -> Iterator[Settings]:
    """Names nothing has provisioned yet."""
    tag = uuid.uuid4().hex[:10]
    yield stack_settings.model_copy(
        update={
            "kafka_topic": f"deploy-{tag}",
            "kafka_dlq_topic": f"deploy-{tag}.dlq",
            "kafka_partitions": 5,
            "mongo_database": f"deploy_{tag}",
            "cassandra_keyspace": f"deploy_{tag}",
        }
    )


def test_provision_creates_topics_indexes_and_schema_on_running_servers(fresh: Settings) -> None:
    """What the compose file's one-shot services run, against real servers."""
    done = run_cli(fresh, "provision", "kafka", "mongodb", "cassandra")

    assert done.returncode == 0, done.stderr
    partitions = Counter(row.topic for row in describe(fresh))
    assert partitions[fresh.kafka_topic] == 5 and partitions[fresh.kafka_dlq_topic] == 1
    cluster, _session = cassandra.connect(fresh)
    try:
        tables = set(cluster.metadata.keyspaces[fresh.cassandra_keyspace].tables)
    finally:
        cluster.shutdown()
    assert tables == set(cassandra.TABLES)
    client = mongo.connect(fresh)
    try:
        indexes = mongo.prices_collection(client, fresh).index_information()
    finally:
        client.close()
    assert len(indexes) > 1  # _id and the platform's own
    # Idempotent: a second run of the one-shot service changes nothing and succeeds.
    assert run_cli(fresh, "provision").returncode == 0


def test_the_sink_stores_with_the_majority_write_concern_compose_sets(
    settings: Settings, services: dict[str, Any]
) -> None:
    concern = {"CRYPTO_MONGO_WRITE_CONCERN": env_of(services["api"])["CRYPTO_MONGO_WRITE_CONCERN"]}
    produced = run_cli(settings, "produce", "--source", "simulated", "--count", "60")
    consumed = run_cli(settings, "consume", "--until-idle", "3", env_override=concern)

    assert concern == {"CRYPTO_MONGO_WRITE_CONCERN": "majority"}
    assert produced.returncode == 0 and consumed.returncode == 0, consumed.stderr
    assert stored_count(settings) == 60


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads((DOCKER / "grafana/dashboards/crypto_platform.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return {name for query in queries for name in re.findall(r"\bcrypto_\w+", query)}


def test_the_dashboard_queries_metrics_the_api_exposes(settings: Settings) -> None:
    """Scrape the real API, on the test stack with known data, as Prometheus would."""
    write_ticks(settings, [tick_row("BTC", 64_000.0, NOW), tick_row("ETH", 3_100.0, NOW)])
    write_window(settings, "BTC", NOW - dt.timedelta(minutes=5), (100.0, 99.0, 98.0))
    with running_api(settings) as base:
        assert httpx.get(base + "/health", timeout=10).status_code == 200
        text = httpx.get(base + "/metrics", timeout=10).text
        text = httpx.get(base + "/metrics", timeout=10).text  # the first scrape is counted now
    samples = {s.name for family in text_string_to_metric_families(text) for s in family.samples}

    wanted = dashboard_metric_names()
    assert len(wanted) >= 9
    assert sorted(wanted - samples) == []


def test_the_wheel_and_the_image_carry_every_library_the_dashboard_loads() -> None:
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["crypto_platform.api"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    api = REPO / "crypto_platform" / "api"

    for path in LIBRARIES.values():
        served = path.relative_to(api).as_posix()
        assert served in package_data
        assert f"'^crypto_platform/api/{served} '" in dockerfile  # the build checks the wheel
