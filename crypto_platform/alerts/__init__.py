"""Alerts: rules over the prices, gaps and checks, fired once per episode, sent by webhook."""
