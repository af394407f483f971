"""The dashboard in Debian's chromium (Playwright): cards with the right prices, live charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from crypto_platform.settings import Settings
from crypto_platform_tests.api_helpers import NOW, running_api, tick_row, write_ticks, write_window

pytestmark = pytest.mark.browser  # drives Debian's chromium

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PRICES = {"BTC": 64_020.5, "ETH": 3_210.25, "SOL": 151.125}
SHOWN = {"BTC": "$64,020.50", "ETH": "$3,210.25", "SOL": "$151.1250"}
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    start = NOW.replace(second=0) - dt.timedelta(minutes=6)
    for symbol, price in PRICES.items():
        write_ticks(
            settings,
            [
                tick_row(symbol, price * (1 + i / 1000), NOW - dt.timedelta(seconds=60 - i * 10))
                for i in range(5)
            ]
            + [tick_row(symbol, price, NOW, name=symbol.title(), change_24h_pct=1.5)],
        )
        for minute in range(3):
            means = (price * 1.001, price, price * 0.999)
            write_window(settings, symbol, start + dt.timedelta(minutes=minute), means)
    with running_api(settings) as base:
        yield base


def points(page: Page, symbol: str) -> int:
    return page.evaluate(
        "s => Chart.getChart(document.querySelector(`[data-symbol=${s}] canvas`))"
        ".data.datasets[0].data.length",
        symbol,
    )


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_cards_show_the_prices_and_the_charts_grow_with_new_data(
    api: str, settings: Settings, viewport: str, tmp_path: Path
) -> None:
    width, height = VIEWPORTS[viewport]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(api + "/")
            page.wait_for_selector('#connection[data-state="live"]', timeout=15_000)

            for symbol, price in PRICES.items():
                card = page.locator(f'[data-symbol="{symbol}"]')
                assert card.locator(".price").get_attribute("data-value") == str(price)
                assert card.locator(".price").inner_text() == SHOWN[symbol]
                assert card.locator(".badge").is_visible()  # simulated data says so
                assert card.locator(".change").inner_text() == "24h +1.50%"
                assert card.locator(".am").inner_text().startswith("$")
            before = points(page, "BTC")
            assert before == 6
            page.screenshot(path=tmp_path / f"dashboard-{viewport}.png", full_page=True)

            write_ticks(settings, [tick_row("BTC", 64_500.0, NOW + dt.timedelta(seconds=1))])
            page.wait_for_function(
                "n => Chart.getChart(document.querySelector('[data-symbol=BTC] canvas'))"
                ".data.datasets[0].data.length > n",
                arg=before,
                timeout=15_000,
            )
            btc = page.locator('[data-symbol="BTC"] .price')
            assert btc.inner_text() == "$64,500.00"
            page.screenshot(path=tmp_path / f"dashboard-{viewport}-live.png", full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        finally:
            browser.close()

    assert overflow <= 0, f"the page is wider than a {width}px screen"
    assert not errors
