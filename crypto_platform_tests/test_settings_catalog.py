"""The settings' page and deployment lists are generated from settings.py, and stay so.

No server: these read the model and the files, and run the command on a copy of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from crypto_platform.cli import cli
from crypto_platform.errors import ConfigurationError
from crypto_platform.settings import Settings
from crypto_platform.settings_catalog import BEGIN, END, catalog, drifted, rendered
from crypto_platform_tests.conftest import REPO

GENERATED = [
    Path("docs/settings.md"),
    Path("docker/.env.example"),
    Path("docker/compose.yaml"),
    Path("docker/dagster.yaml"),
]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The generated files, copied into a repository root of their own."""
    for path in GENERATED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    return tmp_path


def test_the_generated_files_match_settings_py() -> None:
    assert drifted(REPO) == [], "run `crypto-platform settings --write`"


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]

    assert missing == []


def test_every_setting_is_documented_and_each_deployed_one_reaches_compose_and_runs() -> None:
    settings = catalog()
    page = rendered(REPO)[Path("docs/settings.md")]
    compose = yaml.safe_load((REPO / "docker/compose.yaml").read_text())
    dagster = yaml.safe_load((REPO / "docker/dagster.yaml").read_text())
    deployed = [setting.variable for setting in settings if setting.deployed]

    assert all(f"| `{setting.variable}` |" in page for setting in settings)
    assert [key for key in compose["x-crypto-env"] if key.startswith("CRYPTO_")] == deployed
    forwarded = dagster["run_launcher"]["config"]["env_vars"]
    assert [name for name in forwarded if name.startswith("CRYPTO_")] == deployed


def test_no_secret_gets_a_value_in_any_file() -> None:
    secrets = [setting for setting in catalog() if setting.secret]
    compose = yaml.safe_load((REPO / "docker/compose.yaml").read_text())["x-crypto-env"]
    example = (REPO / "docker/.env.example").read_text().splitlines()

    assert {s.name for s in secrets} == {
        "kafka_sasl_password",
        "cassandra_password",
        "coinranking_api_key",
        "alert_webhook_url",
    }
    for secret in secrets:
        assert secret.default is None
        assert compose[secret.variable] == f"${{{secret.variable}:-}}"
        assert f"# {secret.variable}=" in example


def test_check_names_the_drifted_file_and_write_restores_only_the_block(copy: Path) -> None:
    compose = copy / "docker/compose.yaml"
    hand_written = compose.read_text().replace(
        "  CRYPTO_KAFKA_TOPIC: ${CRYPTO_KAFKA_TOPIC:-crypto.prices}\n", ""
    )
    hand_written = hand_written.replace("    image: mongo:8.0.13", "    image: mongo:8.0.14", 1)
    compose.write_text(hand_written)
    runner = CliRunner()

    checked = runner.invoke(cli, ["settings", "--check", "--root", str(copy)])
    written = runner.invoke(cli, ["settings", "--write", "--root", str(copy)])
    rechecked = runner.invoke(cli, ["settings", "--check", "--root", str(copy)])

    assert checked.exit_code == 1
    assert checked.stderr.splitlines() == [
        "docker/compose.yaml differs from crypto_platform/settings.py",
        "fix: run `crypto-platform settings --write`",
    ]
    assert written.exit_code == 0
    assert written.stdout.splitlines() == [
        "wrote docker/compose.yaml",
        "every settings file matches crypto_platform/settings.py",
    ]
    assert rechecked.exit_code == 0, rechecked.output
    restored = yaml.safe_load(compose.read_text())
    assert restored["x-crypto-env"]["CRYPTO_KAFKA_TOPIC"] == "${CRYPTO_KAFKA_TOPIC:-crypto.prices}"
    assert restored["services"]["mongo"]["image"] == "mongo:8.0.14"  # the hand-written rest


def test_a_file_without_its_markers_is_a_clear_error(copy: Path) -> None:
    dagster = copy / "docker/dagster.yaml"
    dagster.write_text(dagster.read_text().replace(END, "# the end"))

    with pytest.raises(ConfigurationError, match=r"docker/dagster\.yaml needs one line") as error:
        drifted(copy)
    assert BEGIN in str(error.value)
