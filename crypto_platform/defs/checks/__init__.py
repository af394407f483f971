"""Checks: the engine's data checks (`crypto_platform.reports.checks`) as asset checks."""

import dagster as dg

from crypto_platform.defs.checks.engine import ENGINE_CHECKS

defs = dg.Definitions(asset_checks=ENGINE_CHECKS)
