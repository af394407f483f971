"""Automation: the conditions every asset and check declares, and the sensor evaluating them."""

import dagster as dg

from crypto_platform.defs.automation.sensor import automation

defs = dg.Definitions(sensors=[automation])
