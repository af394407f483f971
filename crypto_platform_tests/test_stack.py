"""The local stack: up, status, down, idempotence, durability and clear failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from cassandra.cluster import Cluster
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pymongo import MongoClient

from crypto_platform.errors import StackError
from crypto_platform.settings import Settings
from crypto_platform.stack import LocalStack
from crypto_platform.stack.process import ServerProcess, process_alive
from crypto_platform.streaming.topics import admin_client
from crypto_platform_tests.conftest import run_cli, stack_settings_at


def test_status_shows_three_healthy_servers(stack: LocalStack) -> None:
    statuses = {status.name: status for status in stack.status()}

    assert set(statuses) == {"kafka", "mongodb", "cassandra"}
    assert all(status.healthy and status.pid for status in statuses.values())
    assert statuses["kafka"].ports == {"kafka": stack.settings.kafka_port}
    assert statuses["cassandra"].ports["native"] == stack.settings.cassandra_port


def test_cli_status_prints_each_server_healthy(stack_settings: Settings) -> None:
    result = run_cli(stack_settings, "stack", "status")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("healthy") == 3
    assert str(stack_settings.cassandra_port) in result.stdout


def test_up_created_topics_indexes_and_tables(stack_settings: Settings) -> None:
    s = stack_settings
    admin = admin_client(s)
    try:
        described = {
            t["name"]: t for t in admin.describe_topics([s.kafka_topic, s.kafka_dlq_topic])
        }
    finally:
        admin.close()
    assert len(described[s.kafka_topic]["partitions"]) == 3
    assert len(described[s.kafka_dlq_topic]["partitions"]) == 1

    with MongoClient(s.mongo_uri) as client:
        indexes = client[s.mongo_database][s.mongo_collection].index_information()
    assert "symbol_source_event_time" in indexes

    cluster = Cluster([s.cassandra_hosts[0]], port=s.cassandra_port, protocol_version=3)
    try:
        rows = cluster.connect().execute(
            "SELECT columnfamily_name FROM system.schema_columnfamilies WHERE keyspace_name = %s",
            [s.cassandra_keyspace],
        )
        tables = {row.columnfamily_name for row in rows}
    finally:
        cluster.shutdown()
    assert tables == {
        "prices_by_symbol",
        "latest_prices",
        "aggregates_by_symbol",
        "latest_aggregates",
        "candles",
    }


def test_up_twice_is_harmless(stack: LocalStack) -> None:
    pids_before = {status.name: status.pid for status in stack.status()}

    result = run_cli(stack.settings, "stack", "up")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == 3
    assert {status.name: status.pid for status in stack.status()} == pids_before


def test_data_survives_down_and_up(stack: LocalStack, settings: Settings) -> None:
    marker = uuid.uuid4().hex
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    producer.send(settings.kafka_topic, key=b"BTC", value=marker.encode(), partition=0).get(10)
    producer.close()
    with MongoClient(settings.mongo_uri) as client:
        client[settings.mongo_database].survivors.insert_one({"_id": marker})
    cluster = Cluster(["127.0.0.1"], port=settings.cassandra_port, protocol_version=3)
    cluster.connect().execute(
        f"INSERT INTO {settings.cassandra_keyspace}.latest_prices (symbol, price) VALUES (%s, %s)",
        [marker, 42.0],
    )
    cluster.shutdown()

    stack.down()
    assert not any(status.pid for status in stack.status())
    stack.up()

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, consumer_timeout_ms=5000
    )
    consumer.assign([TopicPartition(settings.kafka_topic, 0)])
    consumer.seek_to_beginning()
    assert [message.value for message in consumer] == [marker.encode()]
    consumer.close()
    with MongoClient(settings.mongo_uri) as client:
        assert client[settings.mongo_database].survivors.find_one({"_id": marker})
    cluster = Cluster(["127.0.0.1"], port=settings.cassandra_port, protocol_version=3)
    row = (
        cluster.connect()
        .execute(
            f"SELECT price FROM {settings.cassandra_keyspace}.latest_prices WHERE symbol = %s",
            [marker],
        )
        .one()
    )
    cluster.shutdown()
    assert row.price == 42.0


def test_port_in_use_is_a_clear_error(stack_settings: Settings, tmp_path: Path) -> None:
    clashing = stack_settings_at(tmp_path).model_copy(
        update={"kafka_bootstrap_servers": stack_settings.kafka_bootstrap_servers}
    )

    result = run_cli(clashing, "stack", "up")

    assert result.returncode == 1
    assert f"port {stack_settings.kafka_port}" in result.stderr
    assert "already in use" in result.stderr
    assert "CRYPTO_KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.stack  # starts servers of its own, not the test stack
def test_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    broken = LocalStack(stack_settings_at(tmp_path))
    mongo_data = tmp_path / "mongodb" / "data"
    mongo_data.parent.mkdir(parents=True)
    mongo_data.write_text("a file where the data directory should be")
    try:
        with pytest.raises(StackError, match=r"mongodb exited during start-up\. Last lines"):
            broken.up()
    finally:
        broken.down()
    assert not any(status.pid for status in broken.status())


def test_bad_setting_names_the_variable(stack_settings: Settings) -> None:
    bad = {**stack_settings.as_env(), "CRYPTO_CASSANDRA_PORT": "nine-thousand"}

    result = run_cli(stack_settings.model_copy(), "stack", "status", env_override=bad)

    assert result.returncode == 1
    assert "CRYPTO_CASSANDRA_PORT" in result.stderr
    assert "nine-thousand" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("pid_file", ["a bare pid", "a reused pid"])
def test_down_never_signals_a_process_the_stack_did_not_start(
    tmp_path: Path, pid_file: str
) -> None:
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        local = LocalStack(stack_settings_at(tmp_path))
        kafka = local.servers[0]
        kafka.run_dir.mkdir(parents=True)
        if pid_file == "a bare pid":  # what a pid file held before it recorded more
            kafka.process.pid_file.write_text(str(stranger.pid))
        else:  # our broker had this pid before a reboot; now an unrelated process has it
            started = psutil.Process(stranger.pid).create_time() - 3600
            record = {"pid": stranger.pid, "create_time": started, "cmdline": kafka.argv()}
            kafka.process.pid_file.write_text(json.dumps(record))

        local.down()

        assert stranger.poll() is None, "stack down signalled an unrelated process"
        assert not kafka.process.pid_file.exists()
        assert {status.name: status.pid for status in local.status()}["kafka"] is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_server_is_ours_the_moment_it_is_started(tmp_path: Path) -> None:
    """Just after fork its command line is briefly not the server's (1 start in hundreds)."""
    process = ServerProcess("sleeper", tmp_path)
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    for _ in range(1500):
        pid = process.start(argv)
        try:
            assert process.pid() == pid
        finally:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_a_server_whose_main_thread_ended_runs_until_its_last_thread_does() -> None:
    """The broker's main thread can end while another still saves its state, port open."""
    code = (
        "import ctypes, threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    stat = Path(f"/proc/{process.pid}/stat")
    try:
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the main thread did not end"
            time.sleep(0.05)
        assert process_alive(process.pid)
    finally:
        process.kill()
        process.wait()
    assert not process_alive(process.pid)
