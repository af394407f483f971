"""The root Definitions: the merge of every `defs/<domain>/` package's `defs`."""

import dagster as dg

from crypto_platform.defs import (
    alerts,
    analytics,
    automation,
    checks,
    completeness,
    ingestion,
    reports,
    resources,
    statistics,
    streams,
    supervision,
)

defs = dg.Definitions.merge(
    resources.defs,
    automation.defs,
    checks.defs,
    streams.defs,
    ingestion.defs,
    analytics.defs,
    supervision.defs,
    statistics.defs,
    reports.defs,
    completeness.defs,
    alerts.defs,
)
