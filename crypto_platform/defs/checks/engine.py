"""Asset checks built from the engine's one list of checks (`crypto_platform.reports.checks`).

The check runs the same function `crypto-platform check` runs, through the run's shared
clients, every 15 minutes (and on demand from the UI or `dg launch`).

None of them blocks: each runs alone, in a run of its own, against a store that its
long-running job writes to all the time, so no run holds both a check and what is
downstream of its asset, and no result is ever about the latest materialisation (which
is what an automation condition on a check reads). What must stop an hour's statistics is
checked per hour instead: the blocking checks of `completeness/hourly_completeness`.

`tick_freshness` stays the CLI's: in Dagster, the streams' freshness policy judges the
same limit (defs/streams/freshness.py).
"""

import dagster as dg

from crypto_platform.defs.automation.conditions import EVERY_15_MINUTES
from crypto_platform.defs.resources.clients import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    stores_for,
)
from crypto_platform.defs.resources.unreachable import explained
from crypto_platform.reports.checks import CHECKS, Check, tick_freshness


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
        stores = stores_for(kafka=kafka, mongo=mongo, cassandra=cassandra)
        with explained(stores.settings):
            outcome = check.run(stores)
        return dg.AssetCheckResult(
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity(check.severity),
            description=outcome.description,
            metadata=outcome.metadata,
        )

    return run


# Every engine check but `tick_freshness`, whose limit Dagster's freshness policy judges.
ENGINE_CHECKS = [_definition(check) for check in CHECKS if check.run is not tick_freshness]
