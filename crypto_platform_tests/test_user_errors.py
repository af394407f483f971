"""Bad input: one clear line (exit 2 for usage, 1 for a failure), no traceback, no secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from crypto_platform.settings import Settings, load_settings
from crypto_platform.sources import simulated_mark
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.stack.kafka_server import KafkaServer
from crypto_platform_tests.conftest import run_cli


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "no symbol given"),
        (",", "no symbol given"),
        ("btc-usd", "not a symbol: BTC-USD"),
        ("BTC,eth/usd", "ETH/USD"),
    ],
)
def test_a_bad_symbols_setting_is_one_line(stack_settings: Settings, value: str, says: str) -> None:
    result = run_cli(
        stack_settings, "produce", "--count", "1", env_override={"CRYPTO_SYMBOLS": value}
    )

    assert result.returncode == 1
    line = one_line_error(result)
    assert "CRYPTO_SYMBOLS" in line and says in line


@pytest.mark.parametrize("value", ["btc-usd", ""])
def test_a_bad_symbols_option_is_a_usage_error(stack_settings: Settings, value: str) -> None:
    result = run_cli(stack_settings, "produce", "--symbols", value, "--count", "1")

    assert result.returncode == 2
    assert "Invalid value for '--symbols'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_variable_is_named_with_the_closest_setting(stack_settings: Settings) -> None:
    result = run_cli(stack_settings, "stack", "status", env_override={"CRYPTO_SYMBOL": "BTC"})

    assert result.returncode == 0, result.stderr
    assert "CRYPTO_SYMBOL is not a setting" in result.stderr
    assert "did you mean CRYPTO_SYMBOLS?" in result.stderr


@pytest.mark.parametrize(
    ("system", "variable", "setting"),
    [
        ("kafka", "CRYPTO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:{port}"),
        ("mongodb", "CRYPTO_MONGO_URI", "mongodb://bob:s3cret@127.0.0.1:{port}/?tls=false"),
        ("cassandra", "CRYPTO_CASSANDRA_PORT", "{port}"),
    ],
)
def test_an_unreachable_server_names_itself_and_the_setting(
    stack_settings: Settings, system: str, variable: str, setting: str
) -> None:
    (port,) = free_ports(1)

    result = run_cli(
        stack_settings,
        "provision",
        system,
        env_override={variable: setting.format(port=port)},
    )

    assert result.returncode == 1
    line = one_line_error(result)
    assert f"127.0.0.1:{port}" in line and "not reachable" in line
    assert variable.split("_")[1] in line  # the setting to change: CRYPTO_<SYSTEM>...
    assert "s3cret" not in result.stdout + result.stderr


def test_local_servers_get_no_crypto_setting_nor_secret(
    stack_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRYPTO_COINRANKING_API_KEY", "s3cret-key")
    (port,) = free_ports(1)
    server = KafkaServer(
        stack_settings.model_copy(
            update={"data_dir": tmp_path, "kafka_bootstrap_servers": f"127.0.0.1:{port}"}
        )
    )
    pid = server.process.start(server.argv(), env=server.env(), cwd=server.run_dir)
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        server.process.stop()

    assert b"s3cret-key" not in environment
    assert b"CRYPTO_" not in environment


def test_a_bad_mongodb_uri_is_named_without_its_password() -> None:
    """The URI is not echoed back: it can carry a password."""
    env = {"CRYPTO_MONGO_URI": "mongo://bob:s3cret@127.0.0.1/"}
    result = run_cli(load_settings(), "topics", env_override=env, timeout=60)

    assert result.returncode == 1
    line = one_line_error(result)
    assert "CRYPTO_MONGO_URI" in line and "mongodb://" in line
    assert "s3cret" not in result.stdout + result.stderr


def test_a_corrupt_high_water_mark_stops_the_simulated_producer_in_one_line(
    tmp_path: Path,
) -> None:
    """Checked before any server is reached: no stack needed."""
    mark = simulated_mark(load_settings(data_dir=tmp_path))
    mark.write_text("17637000000\x00\x00")  # cut short and padded, as after a crash

    result = run_cli(
        load_settings(data_dir=tmp_path), "produce", "--source", "simulated", "--count", "1"
    )

    assert result.returncode == 1
    line = one_line_error(result)
    assert str(mark) in line and "high-water mark" in line and "restore it" in line
