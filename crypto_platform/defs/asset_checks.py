"""Asset checks built from the engine's one list of checks (`crypto_platform.reports.checks`).

The check runs the same function `crypto-platform check` runs, through the run's shared
clients, every 15 minutes (and on demand from the UI or `dg launch`).

None of them blocks: each runs alone, in a run of its own, against a store that its
long-running job writes to all the time, so no run holds both a check and what is
downstream of its asset, and no result is ever about the latest materialisation (which
is what an automation condition on a check reads). What must stop an hour's statistics is
checked per hour instead: the blocking checks of `completeness/hourly_completeness`.

`tick_freshness` stays the CLI's: in Dagster, the streams' freshness policy judges the
same limit (defs/freshness.py).
"""

import dagster as dg

from crypto_platform.defs.streams.resources import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    stores_for,
)
from crypto_platform.defs.unreachable import explained
from crypto_platform.reports.checks import CHECKS, Check, tick_freshness

EVERY_15_MINUTES: dg.AutomationCondition[dg.AssetCheckKey] = (
    dg.AutomationCondition.cron_tick_passed("*/15 * * * *")
)


def _definition(check: Check) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(check.asset)),
        name=check.name,
        description=check.description.strip().splitlines()[0],
        automation_condition=EVERY_15_MINUTES,
    )
    def run(
        kafka: KafkaResource, mongo: MongoResource, cassandra: CassandraResource
    ) -> dg.AssetCheckResult:
        stores = stores_for(kafka, mongo, cassandra)
        with explained(stores.settings):
            outcome = check.run(stores)
        return dg.AssetCheckResult(
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity(check.severity),
            description=outcome.description,
            metadata=outcome.metadata,
        )

    return run


def checks_for(*keys: dg.AssetKey) -> list[dg.AssetChecksDefinition]:
    """The asset checks of these assets, in the order the engine lists them."""
    wanted = {tuple(key.path) for key in keys}
    return [
        _definition(check)
        for check in CHECKS
        if check.asset in wanted and check.run is not tick_freshness
    ]
