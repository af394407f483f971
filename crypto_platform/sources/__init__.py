"""Price sources, one module each; `build_source` picks one from the settings."""

from __future__ import annotations

from pathlib import Path

from crypto_platform.errors import ConfigurationError
from crypto_platform.settings import Settings
from crypto_platform.sources.base import PriceSource, SourceStats
from crypto_platform.sources.binance import BinanceRestSource
from crypto_platform.sources.binance_ws import BinanceWebSocketSource
from crypto_platform.sources.coinranking import CoinrankingSource
from crypto_platform.sources.fallback import FallbackSource, LiveFactory
from crypto_platform.sources.replay import ReplaySource
from crypto_platform.sources.simulated import SimulatedSource

__all__ = ["PriceSource", "SourceStats", "build_source"]


def build_source(
    settings: Settings,
    *,
    source: str | None = None,
    symbols: list[str] | None = None,
    interval: float = 2.0,
    rate: float | None = None,
    seed: int = 42,
    replay_file: Path | None = None,
) -> PriceSource:
    """The source named by `source` (default: the setting), ready to iterate."""
    name = source or settings.source
    symbols = symbols or list(settings.symbols)
    api_key = (
        settings.coinranking_api_key.get_secret_value() if settings.coinranking_api_key else None
    )
    if name == "binance":
        return BinanceRestSource(symbols, settings.binance_base_url, interval)
    if name == "binance-ws":
        return BinanceWebSocketSource(symbols, settings.binance_ws_url)
    if name == "coinranking":
        return CoinrankingSource(symbols, settings.coinranking_base_url, interval, api_key)
    if name == "simulated":
        return SimulatedSource(symbols, seed=seed, rate=rate, state_file=simulated_mark(settings))
    if name == "replay":
        if replay_file is None:
            raise ConfigurationError("the replay source needs a file: pass --replay-file FILE")
        return ReplaySource(symbols, replay_file, rate=rate)
    if name == "auto":
        return _auto_source(settings, symbols, interval, api_key, seed, rate)
    raise ConfigurationError(
        f"unknown source {name!r}: choose auto, binance, binance-ws, coinranking, "
        "simulated or replay (CRYPTO_SOURCE or --source)"
    )


def _auto_source(
    settings: Settings,
    symbols: list[str],
    interval: float,
    api_key: str | None,
    seed: int,
    rate: float | None,
) -> FallbackSource:
    """Binance if it answers, else Coinranking (with a key), else the simulator, loudly.

    On a fallback it re-probes the better live sources every `auto_reprobe_s` seconds and
    switches to the best that answers (see `FallbackSource`).
    """
    live: list[LiveFactory] = [
        lambda **http: BinanceRestSource(symbols, settings.binance_base_url, interval, **http)
    ]
    if api_key:
        live.append(
            lambda **http: CoinrankingSource(
                symbols, settings.coinranking_base_url, interval, api_key, **http
            )
        )
    return FallbackSource(
        symbols,
        live,
        lambda: SimulatedSource(
            symbols,
            seed=seed,
            rate=rate or len(symbols) / interval,
            state_file=simulated_mark(settings),
        ),
        reprobe_s=settings.auto_reprobe_s,
    )


def simulated_mark(settings: Settings) -> Path:
    """Where the simulator keeps its high-water mark, so a restart reuses no identity."""
    return settings.data_dir / "simulated-high-water-mark"
