"""`alert_sensor`: every few seconds, the alert rules evaluated, each episode recorded and sent.

The rule file (`CRYPTO_ALERT_RULES_FILE`) is read when the definitions load, as the
settings are (`loaded_settings`): a changed file takes a reload of the code location. A
file with a mistake is refused then, whole: its one line, naming the rule and the field,
is logged and is every evaluation's skip reason, and the rest of the platform runs.

Each evaluation is `alerts.evaluation.run_evaluation`: the rules read the stores, episodes
are recorded and cleared in MongoDB, then what the webhook has not accepted is sent. The
cursor holds the open episodes and the receiver's Retry-After; a check rule reads its
check's latest evaluation from the instance. When MongoDB does not answer, the evaluation
is skipped with the reason and the cursor kept: the next one sees the same conditions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dagster as dg
from pymongo.errors import ConnectionFailure

from crypto_platform.alerts.conditions import CheckOutcome
from crypto_platform.alerts.evaluation import Episodes, run_evaluation
from crypto_platform.alerts.rules import CheckRule, configured_rules
from crypto_platform.defs.resources.clients import MongoResource, loaded_settings
from crypto_platform.diagnostics import explain_unreachable
from crypto_platform.errors import ConfigurationError

log = logging.getLogger(__name__)

NO_RULES = "no alert rules: CRYPTO_ALERT_RULES_FILE is not set (see docs/alerts.md)"


def check_outcomes(instance: dg.DagsterInstance) -> Callable[[CheckRule], CheckOutcome | None]:
    """A check rule's check, as its latest evaluation in `instance` (None: none, or running)."""

    def outcome(rule: CheckRule) -> CheckOutcome | None:
        key = dg.AssetCheckKey(dg.AssetKey(rule.asset_path), rule.check)
        record = instance.get_latest_asset_check_evaluation_record(key)
        event = record.event if record is not None else None
        evaluation = event.asset_check_evaluation if event is not None else None
        if record is None or event is None or evaluation is None:
            return None
        return CheckOutcome(
            passed=evaluation.passed,
            severity=evaluation.severity.value,
            description=evaluation.description,
            partition=evaluation.partition,
            run_id=record.run_id,
            evaluated_at_ms=int(event.timestamp * 1000),
        )

    return outcome


def build_alert_sensor() -> dg.SensorDefinition:
    """The sensor over the rule file as it is now; a file with a mistake is refused here."""
    try:
        rules, refusal = configured_rules(loaded_settings()), None
    except ConfigurationError as error:
        rules, refusal = [], str(error)
        log.error(refusal)

    @dg.sensor(
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates the alert rules (CRYPTO_ALERT_RULES_FILE) every few seconds; "
        "records each episode once, with its evidence, and sends it to the webhook.",
    )
    def alert_sensor(
        context: dg.SensorEvaluationContext, mongo: MongoResource
    ) -> dg.SensorResult | dg.SkipReason:
        if refusal is not None or not rules:
            return dg.SkipReason(refusal or NO_RULES)
        settings = loaded_settings(mongo)
        episodes = Episodes.from_cursor(context.cursor)
        try:
            result = run_evaluation(settings, rules, check_outcomes(context.instance), episodes)
        except ConnectionFailure as error:
            return dg.SkipReason(explain_unreachable(error, settings))
        for alert in result.fired:
            context.log.info(f"alert {alert.id}: {alert.message}")
        return dg.SensorResult(skip_reason=result.summary(), cursor=result.episodes.cursor())

    return alert_sensor
