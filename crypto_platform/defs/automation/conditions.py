"""Every automation condition of the platform, beside the sensor that evaluates them.

The assets and checks take theirs from here; `sensor.automation` evaluates them all.
"""

import dagster as dg

# The engine's asset checks (defs/checks/): every 15 minutes.
EVERY_15_MINUTES: dg.AutomationCondition[dg.AssetCheckKey] = (
    dg.AutomationCondition.cron_tick_passed("*/15 * * * *")
)

# An hour's completeness: once it has settled (its `mongo/settled_hours` partition is
# recorded), and again whenever a repair rewrote it (late ticks, backfills: its
# `cassandra/repaired_hours` partition is materialised); an update that comes while the
# hour or an input of it runs waits for that run. Any hour, not only the latest: settled
# hours come in order, repairs of any hour.
WHEN_SETTLED_OR_REPAIRED = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)

# An hour's statistics: the same, and the hour's blocking checks passed (or run first in
# the same run, which stops there if they fail).
WHEN_THE_HOUR_PASSED = (
    WHEN_SETTLED_OR_REPAIRED & dg.AutomationCondition.all_deps_blocking_checks_passed()
)

# The reports: every hour, and once as soon as a report is missing and its sources have
# data, so a new platform shows its first reports within minutes, not at the next hour.
FIRST_DATA = (
    dg.AutomationCondition.missing() & ~dg.AutomationCondition.any_deps_missing()
).newly_true()
EVERY_HOUR = (
    dg.AutomationCondition.cron_tick_passed("0 * * * *") | FIRST_DATA
) & ~dg.AutomationCondition.in_progress()
