"""An hour settles by the sink's stored position, not by the clock (no servers).

The sink's report is recorded as the persist_prices run records it: a materialisation of
mongo/prices carrying the newest event time stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import dagster as dg
import pytest

from crypto_platform.defs.completeness.assets import HOURLY_COMPLETENESS, hourly_completeness
from crypto_platform.defs.resources.clients import forget_loaded_settings
from crypto_platform.defs.statistics.assets import price_statistics
from crypto_platform.defs.streams.assets import MONGO_PRICES, SETTLED_HOURS, STREAM_ASSETS
from crypto_platform.defs.streams.sensors import NEWEST_STORED, settled_hours
from crypto_platform_tests.test_automation import RESOURCES

WATERMARK_S = 600
HOUR = dt.timedelta(hours=1)
# Six hours ago, on the hour: every hour here has closed by the clock.
BASE = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - 6 * HOUR


@pytest.fixture
def instance(loaded_env: Callable[[str, str], None]) -> Iterator[dg.DagsterInstance]:
    loaded_env("CRYPTO_AGGREGATE_WATERMARK_S", str(WATERMARK_S))
    with dg.instance_for_test() as test_instance:
        yield test_instance


def sink_stored_until(instance: dg.DagsterInstance, moment: dt.datetime) -> None:
    newest_ms = int(moment.timestamp() * 1000)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(MONGO_PRICES, metadata={NEWEST_STORED: newest_ms})
    )


def evaluate(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = settled_hours(context)
    assert isinstance(result, dg.SensorResult)
    return result


def hours(result: dg.SensorResult) -> list[str]:
    return [event.partition for event in result.asset_events or []]


def key(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d-%H:%M")


def test_no_hour_settles_before_the_sink_reports(instance: dg.DagsterInstance) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(MONGO_PRICES))

    result = evaluate(instance)

    assert not result.asset_events
    assert NEWEST_STORED in str(result.skip_reason)


def test_an_hour_settles_once_the_sink_stored_past_it_by_the_watermark(
    instance: dg.DagsterInstance,
) -> None:
    # Stored until 1 h 5 min in: less the 10 min watermark, the first hour is not settled.
    sink_stored_until(instance, BASE + HOUR + dt.timedelta(minutes=5))
    first = evaluate(instance)
    sink_stored_until(instance, BASE + HOUR + dt.timedelta(minutes=15))
    settled = evaluate(instance, first.cursor)
    again = evaluate(instance, settled.cursor)
    sink_stored_until(instance, BASE + 3 * HOUR + dt.timedelta(minutes=20))
    caught_up = evaluate(instance, settled.cursor)  # (the cursor kept)

    assert hours(first) == [key(BASE - HOUR)]  # no cursor: the newest settled hour only
    assert hours(settled) == [key(BASE)]
    assert not again.asset_events and again.cursor is None  # nothing new: the cursor stays
    assert hours(caught_up) == [key(BASE + HOUR), key(BASE + 2 * HOUR)]
    assert caught_up.cursor == (BASE + 3 * HOUR).isoformat()


def test_the_watermark_is_read_once_not_at_each_evaluation(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watermark the definitions loaded with holds until the code location reloads."""
    sink_stored_until(instance, BASE + HOUR + dt.timedelta(minutes=15))
    evaluate(instance, BASE.isoformat())  # the settings are read (at the latest) here

    monkeypatch.setenv("CRYPTO_AGGREGATE_WATERMARK_S", "3600")  # the hour not settled by it
    unchanged = evaluate(instance, BASE.isoformat())
    forget_loaded_settings()  # as a reload of the code location would
    reloaded = evaluate(instance, BASE.isoformat())

    assert hours(unchanged) == [key(BASE)]
    assert not reloaded.asset_events and reloaded.cursor is None


def test_a_settled_hour_requests_the_hours_completeness_and_statistics(
    instance: dg.DagsterInstance,
) -> None:
    defs = dg.Definitions(
        assets=[*STREAM_ASSETS, hourly_completeness, price_statistics], resources=RESOURCES
    )
    now = dt.datetime.now(dt.UTC)
    start = dg.evaluate_automation_conditions(defs, instance, evaluation_time=now)
    sink_stored_until(instance, BASE + HOUR + dt.timedelta(minutes=15))
    for event in evaluate(instance, BASE.isoformat()).asset_events or []:
        instance.report_runless_asset_event(event)

    result = dg.evaluate_automation_conditions(
        defs, instance, evaluation_time=now, cursor=start.cursor
    )

    assert instance.get_latest_materialization_event(SETTLED_HOURS) is not None
    assert result.get_requested_partitions(HOURLY_COMPLETENESS) == {key(BASE)}
    assert result.get_requested_partitions(price_statistics.key) == {key(BASE)}


def test_a_stored_time_beyond_year_9999_settles_up_to_now_and_never_stops_the_sensor(
    instance: dg.DagsterInstance,
) -> None:
    """A tick stored before the validation bounded times (or written by hand) reports so."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(MONGO_PRICES, metadata={NEWEST_STORED: 2**62})
    )

    result = evaluate(instance)

    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    assert hours(result) == [key(now - HOUR)]
