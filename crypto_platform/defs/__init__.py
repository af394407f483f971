"""Dagster wiring: one folder per domain, each exposing `defs`; nothing else lives here."""
