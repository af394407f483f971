"""Reports: storage growth and throughput, hourly."""

import dagster as dg

from crypto_platform.defs.reports.assets import storage_growth_report, throughput_report_asset

defs = dg.Definitions(assets=[storage_growth_report, throughput_report_asset])
