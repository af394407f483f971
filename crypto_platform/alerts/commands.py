"""`crypto-platform alerts`: check the rule file, send a rule's sample to the webhook.

A sample is sent as an alert would be (the same JSON, `"test": true`), through the same
retries; it is not recorded. The command waits out a Retry-After of up to
`MAX_RETRY_AFTER_S`, as a person would.
"""

from __future__ import annotations

from crypto_platform.alerts.alert import Alert
from crypto_platform.alerts.rules import Rule, configured_rules
from crypto_platform.alerts.webhook import webhook_for
from crypto_platform.errors import ConfigurationError
from crypto_platform.settings import Settings
from crypto_platform.ticks import now_ms

__all__ = ["check_rules", "sample", "send_sample"]

MAX_RETRY_AFTER_S = 30.0


def _rules(settings: Settings) -> list[Rule]:
    if settings.alert_rules_file is None:
        raise ConfigurationError("CRYPTO_ALERT_RULES_FILE is not set: no alert rules to use")
    return configured_rules(settings)


def check_rules(settings: Settings) -> str:
    """What the rule file holds, once it is valid (else `ConfigurationError`, one line)."""
    rules = _rules(settings)
    described = "; ".join(f"{rule.name}: {rule.describe()}" for rule in rules)
    return f"{len(rules)} alert rules in {settings.alert_rules_file}" + (
        f": {described}" if rules else ""
    )


def sample(rule: Rule, at_ms: int) -> Alert:
    """An alert of `rule` as it could fire, marked as a sample."""
    symbol = getattr(rule, "symbol", None)
    return Alert(
        id=f"{rule.name}:sample:{at_ms}",
        rule=rule.name,
        kind=rule.kind,
        subject="sample",
        symbol=symbol,
        episode=0,
        message=f"[test] alert rule {rule.name!r}: {rule.describe()} (a sample, not an alert)",
        fired_at_ms=at_ms,
        evidence={"sample": True, "rule": rule.model_dump(mode="json")},
    )


def send_sample(settings: Settings, name: str) -> str:
    """Send a sample of rule `name`; what happened, in a line (or a `PlatformError`)."""
    rules = {rule.name: rule for rule in _rules(settings)}
    if name not in rules:
        known = ", ".join(rules) or "none"
        raise ConfigurationError(
            f"no alert rule {name!r} in {settings.alert_rules_file} (its rules: {known})"
        )
    webhook = webhook_for(settings, max_retry_after_s=MAX_RETRY_AFTER_S)
    if webhook is None:
        raise ConfigurationError("CRYPTO_ALERT_WEBHOOK_URL is not set: nowhere to send alerts")
    try:
        status = webhook.send(sample(rules[name], now_ms()), test=True)
    finally:
        webhook.close()
    return f"sent a sample of alert rule {name!r} to the webhook at {webhook.host} (HTTP {status})"
