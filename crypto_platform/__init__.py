"""crypto_platform: real-time crypto market data on Dagster."""
