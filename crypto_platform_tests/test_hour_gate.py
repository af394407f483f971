"""Bad data stops an hour's statistics: a gap not repaired fails the hour's blocking check.

On the test stack's MongoDB, the hour's completeness and statistics run together, as the
automation requests them for a settled hour: the gap fails `hour_complete`, which stops
the statistics in that run; once the gap is filled, the same run materialises them all.
"""

from __future__ import annotations

import dagster as dg

from crypto_platform.defs.completeness.assets import (
    HOUR_COMPLETE,
    HOURLY_COMPLETENESS,
    hourly_completeness,
)
from crypto_platform.defs.completeness.jobs import hour_key
from crypto_platform.defs.statistics.assets import (
    PRICE_JUMPS,
    PRICE_STATISTICS,
    VOLATILITY,
    price_jumps,
    price_statistics,
    volatility,
)
from crypto_platform.settings import Settings
from crypto_platform_tests.test_completeness_dagster import store_the_last_hour_with_a_hole
from crypto_platform_tests.test_gaps import store, ticks
from crypto_platform_tests.test_reports import resources

THE_HOUR = [hourly_completeness, price_statistics, price_jumps, volatility]


def materialised(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def test_an_hour_with_a_gap_gets_no_statistics_until_the_gap_is_filled(
    settings: Settings,
) -> None:
    hour, hole = store_the_last_hour_with_a_hole(settings)

    with dg.instance_for_test() as instance:
        held = dg.materialize(
            THE_HOUR, partition_key=hour_key(hour), resources=resources(settings),
            instance=instance, raise_on_error=False,
        )  # fmt: skip
        store(settings, ticks("BTC", *hole))  # filled
        whole = dg.materialize(
            THE_HOUR, partition_key=hour_key(hour), resources=resources(settings),
            instance=instance,
        )  # fmt: skip

    (failed,) = held.get_asset_check_evaluations()
    assert failed.check_name == HOUR_COMPLETE and not failed.passed
    assert materialised(held) == {HOURLY_COMPLETENESS}  # measured, but no statistics
    (passed,) = whole.get_asset_check_evaluations()
    assert passed.passed
    assert materialised(whole) == {HOURLY_COMPLETENESS, PRICE_STATISTICS, PRICE_JUMPS, VOLATILITY}
