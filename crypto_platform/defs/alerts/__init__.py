"""Alerts: the sensor that evaluates the alert rules and sends what fires."""

import dagster as dg

from crypto_platform.defs.alerts.sensors import build_alert_sensor

defs = dg.Definitions(sensors=[build_alert_sensor()])
