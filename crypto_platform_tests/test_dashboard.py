"""The dashboard in Debian's chromium (Playwright): prices, live charts, spans, gaps shaded."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from crypto_platform.alerts import store
from crypto_platform.alerts.alert import Finding
from crypto_platform.candles import INTERVALS, candle_start
from crypto_platform.completeness.gaps import Gap, mark_unrepairable
from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.ticks import Tick
from crypto_platform_tests.api_helpers import NOW, running_api, tick_row, write_ticks, write_window
from crypto_platform_tests.test_candles_api import write_candles

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
NOW_MINUTE = candle_start(int(NOW.replace(tzinfo=dt.UTC).timestamp() * 1000), "1m")
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
        write_candles(settings, symbol, "1m", NOW_MINUTE - 6 * 60_000, [price] * 6)
        for minute in range(3):
            means = (price * 1.001, price, price * 0.999)
            write_window(settings, symbol, start + dt.timedelta(minutes=minute), means)
    with running_api(settings) as base:
        yield base


@contextmanager
def browser_page(viewport: str) -> Iterator[tuple[Page, list[str]]]:
    """A page of Debian's chromium at the viewport's size, and the script errors it raises."""
    width, height = VIEWPORTS[viewport]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page, errors
        finally:
            browser.close()


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
    width, _ = VIEWPORTS[viewport]
    with browser_page(viewport) as (page, errors):
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
        assert before == 6  # the 1m candles of the last 30 minutes
        assert page.locator("#alert-list").inner_text() == "no alerts"
        page.screenshot(path=tmp_path / f"dashboard-{viewport}.png", full_page=True)

        # The current minute's candle, then the tick that moved the coin: pushed, drawn.
        write_candles(settings, "BTC", "1m", NOW_MINUTE, [64_020.5])
        write_ticks(settings, [tick_row("BTC", 64_500.0, NOW + dt.timedelta(seconds=1))])
        page.wait_for_function(
            "n => Chart.getChart(document.querySelector('[data-symbol=BTC] canvas'))"
            ".data.datasets[0].data.length > n",
            arg=before,
            timeout=15_000,
        )
        # The candle may come first: the poller reads it again on the poll after the load's.
        expect(page.locator('[data-symbol="BTC"] .price')).to_have_text("$64,500.00")
        page.screenshot(path=tmp_path / f"dashboard-{viewport}-live.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    assert overflow <= 0, f"the page is wider than a {width}px screen"
    assert not errors


def test_the_alerts_panel_lists_the_newest_alerts_active_or_cleared(
    api: str, settings: Settings
) -> None:
    now = int(time.time() * 1000)
    client = mongo.connect(settings)
    try:
        alerts = mongo.alerts_collection(client, settings)
        above = Finding("BTC", "BTC", "BTC above $64,000: $64,020.50", {})
        fired, _ = store.fire(alerts, "btc-above", "price", above, now - 60_000)
        store.clear(alerts, fired.id, now - 30_000)
        lag = Finding("sink_lag", None, "the sink lags 5,000 ticks", {})
        store.fire(alerts, "sink-lag", "check", lag, now)
    finally:
        client.close()
    with browser_page("desktop") as (page, errors):
        page.goto(api + "/")
        items = page.locator("#alert-list li")
        expect(items).to_have_count(2)
        shown = [(item.get_attribute("class"), item.inner_text()) for item in items.all()]

    (newest, newest_text), (older, older_text) = shown
    assert newest == "active" and "the sink lags 5,000 ticks" in newest_text
    assert "active, not delivered" in newest_text
    assert older == "cleared" and "BTC: BTC above $64,000: $64,020.50" in older_text
    assert "cleared " in older_text
    assert not errors


# The gap test: 20 minutes of BTC with two holes, in Cassandra (what the chart draws) and in
# MongoDB (what the gap ledger is found from, a tick every 2 s: the simulator's cadence).
SPAN_START = NOW - dt.timedelta(minutes=20)
HOLE_A = (SPAN_START + dt.timedelta(minutes=5), SPAN_START + dt.timedelta(minutes=8))
HOLE_B = (SPAN_START + dt.timedelta(minutes=12), SPAN_START + dt.timedelta(minutes=14))
REASON = "Coinranking's history is too coarse for this span"
Holes = list[tuple[dt.datetime, dt.datetime]]


def _ms(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _outside_holes(times: range, holes: Holes) -> list[int]:
    return [t for t in times if not any(_ms(a) <= t < _ms(b) for a, b in holes)]


def _store(settings: Settings, start: dt.datetime, end: dt.datetime, holes: Holes) -> None:
    """Ticks every 2 s into MongoDB, the raw store the gaps are found in."""
    times = _outside_holes(range(_ms(start), _ms(end), 2000), holes)
    client = mongo.connect(settings)
    try:
        mongo.prices_collection(client, settings).insert_many(
            [
                Tick(
                    source="simulated",
                    symbol="BTC",
                    price=64_000.0,
                    event_time_ms=t,
                    ingest_time_ms=t,
                ).to_document()
                for t in times
            ]
        )
    finally:
        client.close()


def _chart_ticks(
    symbol: str, base: float, start: dt.datetime, end: dt.datetime, holes: Holes
) -> list[dict[str, object]]:
    """Ticks every 10 s into Cassandra, the line the chart draws."""
    times = _outside_holes(range(_ms(start), _ms(end) + 1, 10_000), holes)
    return [
        tick_row(
            symbol,
            round(base * (1 + 0.002 * math.sin(t / 90_000)), 2),
            dt.datetime.fromtimestamp(t / 1000, dt.UTC).replace(tzinfo=None),
            name=symbol.title(),
            change_24h_pct=1.5,
        )
        for t in times
    ]


def _chart_candles(
    settings: Settings,
    symbol: str,
    base: float,
    start: dt.datetime,
    end: dt.datetime,
    holes: Holes,
) -> None:
    """The 1m candles of `_chart_ticks`: one in each minute that has a tick."""
    ticks = _outside_holes(range(_ms(start), _ms(end) + 1, 10_000), holes)
    for minute in sorted({candle_start(t, "1m") for t in ticks}):
        write_candles(settings, symbol, "1m", minute, [base])


def _record_gaps(settings: Settings) -> list[Gap]:
    return find_gaps(settings, _ms(SPAN_START), _ms(NOW), symbols=["BTC"])


@pytest.fixture
def gaps_api(settings: Settings) -> Iterator[str]:
    holes = [HOLE_A, HOLE_B]
    write_ticks(settings, _chart_ticks("BTC", 64_000.0, SPAN_START, NOW, holes))
    write_ticks(settings, _chart_ticks("ETH", 3_210.0, SPAN_START, NOW, []))
    for symbol, price in (("BTC", 64_000.0), ("ETH", 3_210.0)):
        for minute in range(5, 20):
            means = (price * 1.0004, price, price * 0.9996)
            start = SPAN_START + dt.timedelta(minutes=minute - 5)
            write_window(settings, symbol, start, means, latest=minute == 19)
    # MongoDB runs on past the span, so BTC has no open gap at its head.
    _store(settings, SPAN_START, NOW + dt.timedelta(minutes=5), holes)
    for symbol, price in (("BTC", 64_000.0), ("ETH", 3_210.0)):
        _chart_candles(settings, symbol, price, SPAN_START, NOW, holes if symbol == "BTC" else [])
    found = _record_gaps(settings)
    assert [g.status for g in found] == ["open", "open"]
    client = mongo.connect(settings)
    try:
        mark_unrepairable(mongo.gaps_collection(client, settings), found[1], REASON)
    finally:
        client.close()
    with running_api(settings) as base:
        yield base


# In a band's middle column, read from the canvas: [r, g, b] every 4 px down the plot area.
COLUMN = """([symbol, from, to]) => {
  const chart = Chart.getChart(document.querySelector(`[data-symbol=${symbol}] canvas`));
  const x = chart.scales.x.getPixelForValue((from + to) / 2);
  const { top, bottom } = chart.chartArea;
  const ratio = chart.currentDevicePixelRatio;
  const column = [];
  for (let y = top + 3; y < bottom - 3; y += 4) {
    const pixel = chart.ctx.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1);
    column.push([...pixel.data.slice(0, 3)]);
  }
  return column;
}"""


def _column(page: Page, hole: tuple[dt.datetime, dt.datetime]) -> list[list[int]]:
    return page.evaluate(COLUMN, ["BTC", _ms(hole[0]), _ms(hole[1])])


def _share(column: list[list[int]], test: Callable[[int, int, int], bool]) -> float:
    return sum(1 for pixel in column if test(*pixel)) / len(column)


def red(r: int, g: int, b: int) -> bool:  # the open band's translucent red (not the yellow mean)
    return r - max(g, b) > 20 and g < 0.75 * r


def hatched(r: int, g: int, b: int) -> bool:  # the unrepairable band's grey hatch
    return r > 55 and not red(r, g, b)


def background(r: int, g: int, b: int) -> bool:  # the card's own dark blue (or a grid line)
    return r < 45 and not red(r, g, b)


def _open_dashboard(page: Page, api: str) -> None:
    page.goto(api + "/")
    page.wait_for_selector('#connection[data-state="live"]', timeout=15_000)
    page.wait_for_selector('[data-symbol="BTC"] .gaps[data-open]', timeout=15_000)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_gaps_are_shaded_on_the_chart_and_shown_repaired_once_filled(
    gaps_api: str, settings: Settings, viewport: str, tmp_path: Path
) -> None:
    width, _ = VIEWPORTS[viewport]
    with browser_page(viewport) as (page, errors):
        _open_dashboard(page, gaps_api)

        btc = page.locator('[data-symbol="BTC"]')
        caption = btc.locator(".gaps")
        assert caption.inner_text() == "1 gap open, 1 unrepairable in this view"
        assert REASON in (caption.get_attribute("title") or "")
        eth = page.locator('[data-symbol="ETH"] .gaps').inner_text()
        assert eth == "no gaps in this view"
        open_band, unrepairable_band = _column(page, HOLE_A), _column(page, HOLE_B)
        assert _share(open_band, red) > 0.8, open_band
        assert _share(unrepairable_band, hatched) > 0.6, unrepairable_band
        between = (HOLE_A[1] + dt.timedelta(minutes=1), HOLE_B[0] - dt.timedelta(minutes=1))
        assert _share(_column(page, between), background) > 0.8  # no band where no gap
        btc.scroll_into_view_if_needed()
        page.screenshot(path=tmp_path / f"dashboard-gaps-{viewport}.png", full_page=True)

        # Hovering the unrepairable band tells why.
        box = btc.locator("canvas").bounding_box()
        assert box is not None
        x = page.evaluate(
            """(t) => Chart.getChart(document.querySelector('[data-symbol=BTC] canvas'))
               .scales.x.getPixelForValue(t)""",
            _ms(HOLE_B[0]) + 60_000,
        )
        page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
        title = btc.locator("canvas").get_attribute("title") or ""
        assert title.startswith("unrepairable gap") and REASON in title

        # The hole is backfilled (MongoDB, then Cassandra by the repair) and found again.
        _store(settings, HOLE_A[0], HOLE_A[1], [])
        write_ticks(settings, _chart_ticks("BTC", 64_000.0, HOLE_A[0], HOLE_A[1], []))
        _chart_candles(settings, "BTC", 64_000.0, HOLE_A[0], HOLE_A[1], [])
        assert [g.status for g in _record_gaps(settings)] == ["repaired", "unrepairable"]
        _open_dashboard(page, gaps_api)

        assert caption.inner_text() == "1 unrepairable, 1 repaired in this view"
        repaired_band = _column(page, HOLE_A)
        assert _share(repaired_band, red) == 0, repaired_band
        assert _share(repaired_band, lambda r, g, b: g - r >= 12) > 0.6, repaired_band
        assert _share(_column(page, HOLE_B), hatched) > 0.6
        page.screenshot(path=tmp_path / f"dashboard-gaps-{viewport}-repaired.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    assert overflow <= 0, f"the page is wider than a {width}px screen"
    assert not errors


# The span test: 7 hours of BTC in candles of every interval but 1d, through the current
# one and the next (which starts in the future: not served yet), and windows every 5 min.
HOUR_MS = INTERVALS["1h"]
UP, DOWN = [46, 204, 113], [255, 107, 107]  # the dashboard's candlestick colours
SLACK_MS = 5_000  # the page's "now" is a moment after it loaded the candles
DRAWN = """(symbol) => {
  const card = document.querySelector(`[data-symbol=${symbol}]`);
  const chart = Chart.getChart(card.querySelector("canvas"));
  const xs = (dataset) => dataset.data.map((point) => point.x);
  return { now: Date.now(), interval: card.dataset.interval, width: chart.chartArea.width,
           price: xs(chart.data.datasets[0]), means: chart.data.datasets.slice(1).map(xs) };
}"""
# Each candlestick's direction and the colour at its body's centre, read from the canvas.
BODIES = """(symbol) => {
  const chart = Chart.getChart(document.querySelector(`[data-symbol=${symbol}] canvas`));
  const meta = chart.getDatasetMeta(0);
  const ratio = chart.currentDevicePixelRatio;
  return { type: meta.type, bodies: meta.data.map((candle, i) => {
    const point = chart.data.datasets[0].data[i];
    const y = (candle.open + candle.close) / 2;
    const pixel = chart.ctx.getImageData(Math.round(candle.x * ratio), Math.round(y * ratio), 1, 1);
    return [point.c > point.o, [...pixel.data.slice(0, 3)]];
  }) };
}"""


@pytest.fixture
def hours_api(settings: Settings) -> Iterator[str]:
    now = int(time.time() * 1000)
    for interval in ("1m", "5m", "1h"):
        first = candle_start(now - 7 * HOUR_MS, interval)
        count = (candle_start(now, interval) - first) // INTERVALS[interval] + 2
        write_candles(settings, "BTC", interval, first, [64_000.0] * count, moves=(40.0, -40.0))
    five = INTERVALS["5m"]
    starts = range(candle_start(now - 7 * HOUR_MS, "5m"), candle_start(now, "5m") - five + 1, five)
    for start in starts:
        at = dt.datetime.fromtimestamp(start / 1000, dt.UTC).replace(tzinfo=None)
        write_window(
            settings, "BTC", at, (64_010.0, 64_000.0, 63_990.0), latest=start == starts[-1]
        )
    write_ticks(settings, [tick_row("BTC", 64_000.0, NOW)])
    with running_api(settings) as base:
        yield base


def _covers(xs: list[float], since: float, until: float, interval_ms: int) -> bool:
    """In order, the first within one interval after `since`, the last within one before `until`."""
    first, last = xs[0] - since, until - xs[-1]
    return xs == sorted(xs) and -SLACK_MS <= first < interval_ms and 0 <= last < interval_ms


def _near(colour: list[int], expected: list[int]) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(colour, expected, strict=True))


def _fitting(span_ms: int, width: float) -> str:
    """The shortest interval with no more candles over the span than the plot's pixels."""
    return next(name for name, ms in INTERVALS.items() if span_ms // ms + 1 <= width)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_6_hour_span_is_drawn_whole_from_candles_and_as_candlesticks_on_demand(
    hours_api: str, viewport: str, tmp_path: Path
) -> None:
    with browser_page(viewport) as (page, errors):
        page.goto(hours_api + "/")
        page.wait_for_selector('[data-symbol="BTC"][data-span="30m"]', timeout=15_000)
        page.click('#spans [data-span="6h"]')
        page.wait_for_selector('[data-symbol="BTC"][data-span="6h"]', timeout=15_000)
        drawn = page.evaluate(DRAWN, "BTC")
        page.click('#styles [data-style="candles"]')
        page.wait_for_selector('[data-symbol="BTC"][data-style="candles"]', timeout=5_000)
        candles = page.evaluate(BODIES, "BTC")
        page.locator('[data-symbol="BTC"]').screenshot(path=tmp_path / f"candles-{viewport}.png")

    length = INTERVALS[drawn["interval"]]
    since, until = drawn["now"] - 6 * HOUR_MS, drawn["now"]
    assert drawn["interval"] == _fitting(6 * HOUR_MS, drawn["width"]) == "5m"
    assert _covers(drawn["price"], since, until, length), drawn["price"]
    assert len(drawn["price"]) == 6 * HOUR_MS // length <= drawn["width"]
    for means in drawn["means"]:  # each window drawn at its end, one per interval
        assert _covers(means, since, until, length) and len(means) <= drawn["width"]
    assert candles["type"] == "candlestick" and len(candles["bodies"]) == len(drawn["price"])
    coloured = [_near(colour, UP if up else DOWN) for up, colour in candles["bodies"]]
    assert sum(coloured) >= 0.9 * len(coloured), candles["bodies"]
    assert not errors
