"""The sensor that evaluates every automation condition (`conditions`): assets and checks."""

import dagster as dg

automation = dg.AutomationConditionSensorDefinition(
    "automation",
    target=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the declarative automation conditions: reports hourly, each "
    "hour's completeness and statistics once it has settled and again after its repair "
    "(the statistics only while the hour's checks pass), asset checks every 15 minutes.",
)
