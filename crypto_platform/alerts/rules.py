"""The alert rule file (`CRYPTO_ALERT_RULES_FILE`): its model, and its refusal in one line.

A YAML mapping whose `rules` is a list; each rule has a `name` and a `kind`:
`price` (a coin's price above or below a level), `move` (a coin moved over `percent` %
within `minutes`), `gap` (a gap open longer than `minutes`), `check` (a Dagster asset
check failing). A mistake anywhere is one line naming the rule and the field
(`alert rule 'btc-above-100k': field 'level': Input should be greater than 0 (got -5)`):
the file is checked whole before any rule runs, so a rule that cannot work never runs
half the time.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from crypto_platform.errors import ConfigurationError
from crypto_platform.settings import Settings
from crypto_platform.ticks import SYMBOL_PATTERN, SourceTag

__all__ = [
    "CheckRule",
    "GapRule",
    "MoveRule",
    "PriceRule",
    "Rule",
    "configured_rules",
    "load_rules",
]

# No ':' in a name: an alert's id is `<rule>:<subject>:<episode>`.
RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DAGSTER_NAME = r"[A-Za-z0-9_]+"
MAX_MOVE_MINUTES = 1440.0  # a move rule reads this much of a coin's ticks at most

Symbol = Annotated[
    str,
    BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value),
    Field(pattern=SYMBOL_PATTERN, description="Base asset, e.g. BTC (any case)."),
]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=RULE_NAME)]


class PriceRule(_Rule):
    """The newest price of a coin (of any source, or of `source`) above or below `level`."""

    kind: Literal["price"]
    symbol: Symbol
    level: Positive
    direction: Literal["above", "below"] = "above"
    source: SourceTag | None = None

    def describe(self) -> str:
        return f"{self.symbol} {self.direction} {self.level:,g}"


class MoveRule(_Rule):
    """A coin's newest price `percent` % or more from the extreme of its last `minutes`."""

    kind: Literal["move"]
    percent: Positive
    minutes: Annotated[Positive, Field(le=MAX_MOVE_MINUTES)]
    direction: Literal["up", "down", "either"] = "either"
    symbol: Symbol | None = Field(None, description="Unset: every coin followed.")
    source: SourceTag | None = None

    def describe(self) -> str:
        way = {"up": "rises", "down": "falls", "either": "moves"}[self.direction]
        return f"{self.symbol or 'a coin'} {way} {self.percent:g}% within {self.minutes:g} min"


class GapRule(_Rule):
    """A gap (no tick though the source's cadence wants one) still open `minutes` after it began."""

    kind: Literal["gap"]
    minutes: Positive
    symbol: Symbol | None = Field(None, description="Unset: every coin.")
    source: SourceTag | None = None

    def describe(self) -> str:
        return f"a gap of {self.symbol or 'a coin'} open {self.minutes:g} min"


class CheckRule(_Rule):
    """The latest evaluation of a Dagster asset check failed."""

    kind: Literal["check"]
    asset: Annotated[str, Field(pattern=rf"^{DAGSTER_NAME}(/{DAGSTER_NAME})*$")] = Field(
        description="The asset key as the UI shows it, e.g. completeness/hourly_completeness."
    )
    check: Annotated[str, Field(pattern=rf"^{DAGSTER_NAME}$")]

    @property
    def asset_path(self) -> list[str]:
        return self.asset.split("/")

    def describe(self) -> str:
        return f"check {self.asset}:{self.check} fails"


Rule = Annotated[PriceRule | MoveRule | GapRule | CheckRule, Field(discriminator="kind")]
BY_KIND: dict[str, type[_Rule]] = {
    "price": PriceRule,
    "move": MoveRule,
    "gap": GapRule,
    "check": CheckRule,
}


class RuleFile(BaseModel):
    """The file: `rules:`, then the list."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]


def configured_rules(settings: Settings) -> list[Rule]:
    """The rules of `CRYPTO_ALERT_RULES_FILE` (none when it is unset)."""
    return load_rules(settings.alert_rules_file) if settings.alert_rules_file else []


def load_rules(path: Path) -> list[Rule]:
    """The rules of `path`; a mistake is a `ConfigurationError` of one line."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigurationError(f"alert rules file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigurationError(f"alert rules file {path}: not YAML ({_where(error)})") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"alert rules file {path}: expected `rules:` and a list of rules")
    try:
        rules = RuleFile.model_validate(data).rules
    except ValidationError as error:
        problems = [_problem(item, data, path) for item in error.errors()]
        raise ConfigurationError("; ".join(problems)) from None
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigurationError(f"alert rule {rule.name!r}: field 'name': used twice")
        seen.add(rule.name)
    return rules


def _where(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or type(error).__name__
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


def _problem(item: Any, data: Any, path: Path) -> str:
    """One validation error as `alert rule '<name>': field '<field>': <what>`."""
    loc = item["loc"]
    if len(loc) < 2 or loc[0] != "rules":
        return f"alert rules file {path}: field {loc[0]!r}: {_what(item)}"
    rule = _rule_name(data["rules"], loc[1])
    if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"alert rule {rule}: field 'kind': {_kind_problem(item)}"
    if len(loc) < 4:
        return f"alert rule {rule}: a rule is a mapping of fields ({_what(item)})"
    field = ".".join(str(part) for part in loc[3:])
    if item["type"] == "extra_forbidden":
        return f"alert rule {rule}: field {field!r}: {_unknown_field(str(loc[2]), field)}"
    return f"alert rule {rule}: field {field!r}: {_what(item)}"


def _rule_name(rules: list[Any], index: int) -> str:
    name = rules[index].get("name") if isinstance(rules[index], dict) else None
    return repr(name) if isinstance(name, str) else f"#{index + 1}"


def _what(item: Any) -> str:
    shown = item.get("input")
    got = f" (got {shown!r})" if isinstance(shown, str | int | float | bool) else ""
    return f"{item['msg']}{got}"


def _kind_problem(item: Any) -> str:
    kinds = ", ".join(BY_KIND)
    tag = (item.get("ctx") or {}).get("tag")
    return f"{tag!r} is no kind of rule: {kinds}" if tag else f"missing: one of {kinds}"


def _unknown_field(kind: str, field: str) -> str:
    fields = list(BY_KIND[kind].model_fields)
    close = difflib.get_close_matches(field, fields, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"its fields: {', '.join(fields)}"
    return f"not a field of a {kind} rule ({hint})"
