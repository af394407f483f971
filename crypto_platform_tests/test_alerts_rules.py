"""The alert rule file: a mistake is refused in one line naming the rule and the field (no servers).

By the loader, by `crypto-platform alerts check`, and by the sensor, which the definitions
build refusing the file: each evaluation skips with that line. The example of
docs/alerts.md is a valid file whose check rules name real checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import yaml

from crypto_platform.alerts.rules import CheckRule, load_rules
from crypto_platform.definitions import defs
from crypto_platform.defs.alerts.sensors import NO_RULES, build_alert_sensor
from crypto_platform.defs.resources.clients import MongoResource
from crypto_platform.errors import ConfigurationError
from crypto_platform.settings import load_settings
from crypto_platform_tests.conftest import REPO, run_cli
from crypto_platform_tests.test_user_errors import one_line_error

GOOD = {"name": "btc-above-100k", "kind": "price", "symbol": "BTC", "level": 100000}


def rule_file(tmp_path: Path, *rules: object, text: str | None = None) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text if text is not None else yaml.safe_dump({"rules": list(rules)}))
    return path


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({**GOOD, "level": -5}, "alert rule 'btc-above-100k': field 'level': Input should be "
         "greater than 0 (got -5)"),
        ({**GOOD, "levle": 5}, "alert rule 'btc-above-100k': field 'levle': not a field of a "
         "price rule (did you mean 'level'?)"),
        ({**GOOD, "kind": "pirce"}, "alert rule 'btc-above-100k': field 'kind': 'pirce' is no "
         "kind of rule: price, move, gap, check"),
        ({**GOOD, "symbol": "BTC-USD"}, "alert rule 'btc-above-100k': field 'symbol'"),
        ({"name": "eth-drop", "kind": "move", "percent": 5, "minutes": 2000},
         "alert rule 'eth-drop': field 'minutes': Input should be less than or equal to 1440"),
        ({"kind": "gap", "minutes": 10}, "alert rule #1: field 'name': Field required"),
        ({"name": "hour", "kind": "check", "asset": "completeness hourly", "check": "x"},
         "alert rule 'hour': field 'asset'"),
    ],
)  # fmt: skip
def test_a_rule_with_a_mistake_is_one_line_naming_it_and_the_field(
    tmp_path: Path, rule: dict, says: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_rules(rule_file(tmp_path, rule))

    assert str(refused.value).startswith(says)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rules: [", "not YAML (line 1, column 9"),
        ("", "expected `rules:` and a list of rules"),
        ("rules: 5", "field 'rules': Input should be a valid list"),
        (f"rules: [{GOOD}, {GOOD}]", "alert rule 'btc-above-100k': field 'name': used twice"),
    ],
)
def test_a_file_with_a_mistake_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(says)) as refused:
        load_rules(rule_file(tmp_path, text=text))

    assert "\n" not in str(refused.value)


def test_the_command_refuses_a_bad_file_in_one_line_and_lists_a_good_one(tmp_path: Path) -> None:
    bad = rule_file(tmp_path, {**GOOD, "level": "lots"})
    refused = run_cli(
        load_settings(), "alerts", "check", env_override={"CRYPTO_ALERT_RULES_FILE": str(bad)}
    )
    good = rule_file(tmp_path, GOOD)
    listed = run_cli(
        load_settings(), "alerts", "check", env_override={"CRYPTO_ALERT_RULES_FILE": str(good)}
    )

    assert refused.returncode == 1
    assert one_line_error(refused) == (
        "error: alert rule 'btc-above-100k': field 'level': Input should be a valid number, "
        "unable to parse string as a number (got 'lots')"
    )
    assert listed.returncode == 0, listed.stderr
    assert "1 alert rules" in listed.stdout and "btc-above-100k: BTC above 100,000" in listed.stdout


def evaluate(sensor: dg.SensorDefinition) -> object:
    with dg.build_sensor_context(resources={"mongo": MongoResource()}) as context:
        return sensor(context)


def test_the_sensor_refuses_a_bad_file_when_the_definitions_load(
    tmp_path: Path, loaded_env: Callable[[str, str], None]
) -> None:
    loaded_env("CRYPTO_ALERT_RULES_FILE", str(rule_file(tmp_path, {**GOOD, "level": 0})))
    refusing = build_alert_sensor()
    loaded_env("CRYPTO_ALERT_RULES_FILE", "")
    without_rules = build_alert_sensor()

    skipped = evaluate(refusing)

    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == (
        "alert rule 'btc-above-100k': field 'level': Input should be greater than 0 (got 0)"
    )
    assert evaluate(without_rules) == dg.SkipReason(NO_RULES)


def test_the_documented_example_is_valid_and_names_real_checks(tmp_path: Path) -> None:
    page = (REPO / "docs" / "alerts.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", page, re.S)
    checks = {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}

    rules = load_rules(rule_file(tmp_path, text=example))

    assert {rule.kind for rule in rules} == {"price", "move", "gap", "check"}
    named = {f"{rule.asset}:{rule.check}" for rule in rules if isinstance(rule, CheckRule)}
    assert named <= checks
