// The live dashboard: a card and a chart per coin, fed by the API's REST endpoints once
// (and again when the span changes) and then by the Server-Sent Events of /stream. Only
// real values are shown. Read again on a timer: the gap ledger (/gaps) and the alerts
// (/alerts), which no event announces.
"use strict";

const SPANS = { "30m": 30, "1h": 60, "6h": 360, "1d": 1440, "7d": 10080 }; // minutes
const TICK_MINUTES = { "30m": 10, "1h": 15, "6h": 120, "1d": 360, "7d": 2880 }; // x labels
const INTERVALS = { "1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000 };
const STALE_S = 60;
const GAPS_REFRESH_S = 30;
const ALERTS_REFRESH_S = 15;
const ALERTS_SHOWN = 8;
const view = { span: "30m", style: "line" }; // the span picker and the price's style
// symbol -> {element, chart, latest, current (newest window), windowS, interval, stepMs,
//            source, candles: Map(start -> point), windows: Map(step -> point), load}
const cards = new Map();

const number = (value, digits) =>
  value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const digitsFor = (price) => (price >= 1000 ? 2 : price >= 1 ? 4 : 8);
const usd = (price) => "$" + number(price, digitsFor(price));
const ms = (iso) => Date.parse(iso);
const clock = (t) => new Date(t).toISOString().slice(11, 19);
const spanMs = () => SPANS[view.span] * 60_000;
const stamp = (t) => new Date(t).toISOString().slice(5, 16).replace("T", " ");
// Axis labels: the time of day, with the date on spans longer than 6 hours.
const tickLabel = (t) => (spanMs() > 6 * 3_600_000 ? stamp(t) : clock(t).slice(0, 5));

// `missing` is what a 404 means (e.g. [] for no candles yet); any other failure throws.
async function getJSON(path, missing) {
  const response = await fetch(path);
  if (response.status === 404 && missing !== undefined) return missing;
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// The shortest interval whose candles over the span fit the plot, one per pixel at most:
// never more points than the chart can show, and the whole span in one request.
function intervalFor(span, width) {
  const fits = Object.keys(INTERVALS).find((name) => Math.floor(span / INTERVALS[name]) < width);
  return fits || "1d";
}

// Gaps are bands over [start, end] behind the lines: open ones red, unrepairable ones grey
// and hatched, repaired ones only outlined in green.
const GAP_STYLES = {
  open: { fill: "rgba(255, 107, 107, 0.30)", line: "rgba(255, 107, 107, 0.75)" },
  unrepairable: { fill: null, line: "rgba(170, 178, 196, 0.80)" },
  repaired: { fill: "rgba(46, 204, 113, 0.06)", line: "rgba(46, 204, 113, 0.60)", dash: [3, 3] },
};

function hatch() {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const ctx = tile.getContext("2d");
  ctx.fillStyle = "rgba(130, 138, 156, 0.45)";
  ctx.fillRect(0, 0, 8, 8);
  ctx.strokeStyle = "rgba(200, 206, 220, 0.55)";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(0, 8); ctx.lineTo(8, 0); ctx.moveTo(-2, 2); ctx.lineTo(2, -2);
  ctx.moveTo(6, 10); ctx.lineTo(10, 6);
  ctx.stroke();
  return tile;
}

// The pixels [left, right] of a gap on the chart's x scale, clipped to the plot area.
function gapPixels(chart, gap) {
  const { left, right } = chart.chartArea;
  const x = chart.scales.x;
  const from = Math.max(left, x.getPixelForValue(gap.from));
  const to = Math.min(right, x.getPixelForValue(gap.to));
  return to > from ? [from, Math.max(to, from + 2)] : null; // a short gap stays visible
}

const gapBands = {
  id: "gapBands",
  beforeDatasetsDraw(chart) {
    const gaps = chart.$gaps || [];
    if (!gaps.length) return;
    const { ctx, chartArea: { top, bottom } } = chart;
    ctx.save();
    for (const gap of gaps) {
      const span = gapPixels(chart, gap);
      if (!span) continue;
      const style = GAP_STYLES[gap.status] || GAP_STYLES.open;
      const [from, to] = span;
      ctx.fillStyle = style.fill || (chart.$hatch ||= ctx.createPattern(hatch(), "repeat"));
      ctx.fillRect(from, top, to - from, bottom - top);
      ctx.strokeStyle = style.line;
      ctx.lineWidth = 1;
      ctx.setLineDash(style.dash || []);
      ctx.strokeRect(from + 0.5, top + 0.5, to - from - 1, bottom - top - 1);
    }
    ctx.restore();
  },
};

function describeGap(gap) {
  const ticks = `${gap.ticks_expected} ticks ${gap.status === "repaired" ? "filled" : "missing"}`;
  const span = `${clock(gap.from)}–${clock(gap.to)} UTC, ${ticks} (${gap.source})`;
  const why = gap.status === "unrepairable" ? `: ${gap.reason || "no reason given"}` : "";
  return `${gap.status} gap ${span}${why}`;
}

// Hovering a band names it (the canvas's title is the browser's own tooltip).
function hoverGap(event, elements, chart) {
  const { top, bottom } = chart.chartArea;
  const inside = event.y >= top && event.y <= bottom;
  const gap = inside && (chart.$gaps || []).find((g) => {
    const span = gapPixels(chart, g);
    return span && event.x >= span[0] && event.x <= span[1];
  });
  chart.canvas.title = gap ? describeGap(gap) : "";
}

// The price line across a gap not repaired is dotted: no tick was seen there.
function acrossGap(segment) {
  const from = segment.p0.parsed.x;
  const to = segment.p1.parsed.x;
  const gaps = segment.chart.$gaps || [];
  return gaps.some((g) => g.status !== "repaired" && from < g.to && to > g.from);
}

// Candlesticks (chartjs-chart-financial): green when the price rose, red when it fell.
const UP = "#2ecc71";
const DOWN = "#ff6b6b";
const FLAT = "#aab2c4";

// The x axis's labels at round times (UTC): every 10 min on 30 min, every 2 days on 7 days.
function roundTicks(scale) {
  const step = TICK_MINUTES[view.span] * 60_000;
  scale.ticks = [];
  for (let t = Math.ceil(scale.min / step) * step; t <= scale.max; t += step) {
    scale.ticks.push({ value: t });
  }
}

function makeChart(canvas) {
  const line = (label, color, dash) => ({
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: dash ? 1.5 : 2,
    borderDash: dash || [], pointRadius: 0, tension: 0,
  });
  // Each point carries its candle's close as `y` (the line) and o, h, l, c (candlesticks).
  const price = {
    ...line("price", "#4dabf7"),
    segment: { borderDash: (s) => (acrossGap(s) ? [2, 4] : undefined) },
    backgroundColors: { up: UP, down: DOWN, unchanged: FLAT },
    borderColors: { up: UP, down: DOWN, unchanged: FLAT },
  };
  return new Chart(canvas, {
    type: "line",
    plugins: [gapBands],
    data: {
      datasets: [
        price,
        line("arithmetic mean", "#f7b731", [6, 3]),
        line("geometric mean", "#2ecc71", [2, 2]),
        line("harmonic mean", "#e056fd", [8, 3, 2, 3]),
      ],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      interaction: { mode: "nearest", intersect: false },
      onHover: hoverGap,
      scales: {
        x: { type: "linear", grid: { color: "#232b40" }, afterBuildTicks: roundTicks,
             ticks: { color: "#8d96ab", callback: tickLabel } },
        y: { ticks: { color: "#8d96ab", maxTicksLimit: 5 }, grid: { color: "#232b40" } },
      },
      plugins: {
        legend: { labels: { color: "#c9cfdc", boxWidth: 12, font: { size: 10 } } },
        tooltip: { callbacks: { title: (items) => tickLabel(items[0].parsed.x) } },
      },
    },
  });
}

function card(symbol) {
  if (cards.has(symbol)) return cards.get(symbol);
  document.getElementById("empty")?.remove();
  const element = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
  element.dataset.symbol = symbol;
  element.querySelector(".symbol").textContent = symbol;
  const container = document.getElementById("cards");
  const after = [...container.children].find((other) => other.dataset.symbol > symbol);
  container.insertBefore(element, after || null);
  const entry = { element, chart: makeChart(element.querySelector("canvas")), latest: null,
                  current: null, windowS: 0, interval: null, stepMs: INTERVALS["1m"],
                  source: null, candles: new Map(), windows: new Map(), load: 0 };
  cards.set(symbol, entry);
  return entry;
}

function showPrice(latest) {
  const entry = card(latest.symbol_coin);
  if (entry.latest && ms(entry.latest.timestamp) > ms(latest.timestamp)) return;
  entry.latest = latest;
  const el = entry.element;
  el.querySelector(".name").textContent = latest.name_coin || "";
  const price = el.querySelector(".price");
  price.textContent = usd(latest.price);
  price.dataset.value = String(latest.price);
  el.querySelector(".badge").hidden = latest.source !== "simulated";
  const change = el.querySelector(".change");
  const pct = latest.percent_change_24hr;
  change.textContent = pct == null ? "24h –" : `24h ${pct >= 0 ? "+" : ""}${number(pct, 2)}%`;
  change.className = "change" + (pct == null ? "" : pct >= 0 ? " up" : " down");
  showAge(entry);
}

function showAge(entry) {
  if (!entry.latest) return;
  const age = Math.max(0, (Date.now() - ms(entry.latest.timestamp)) / 1000);
  const text = age < 120 ? `${age.toFixed(0)} s` : age < 7200 ? `${(age / 60).toFixed(0)} min`
    : `${(age / 3600).toFixed(1)} h`;
  const el = entry.element.querySelector(".age");
  el.textContent = `updated ${text} ago (${entry.latest.source})`;
  el.classList.toggle("stale", age > STALE_S);
}

const pricePoint = (start, o, h, l, c, last) => ({ x: start, y: c, o, h, l, c, last });

// A candle of the stream: the chart's own interval replaces its candle; a shorter one (the
// current minute) is folded into the chart's candle holding it. One source per chart.
function addCandle(c) {
  const entry = cards.get(c.symbol_coin);
  if (!entry || !entry.interval || (entry.source && c.source !== entry.source)) return;
  const length = INTERVALS[entry.interval];
  if (INTERVALS[c.interval] > length) return;
  const at = ms(c.start);
  const start = at - (at % length);
  const known = entry.candles.get(start);
  entry.candles.set(start, c.interval === entry.interval || !known
    ? pricePoint(start, c.open, c.high, c.low, c.close, at)
    : pricePoint(start, known.o, Math.max(known.h, c.high), Math.min(known.l, c.low),
                 at >= known.last ? c.close : known.c, Math.max(known.last, at)));
  entry.source = c.source;
  trim(entry);
}

// A window is drawn at its end, or when it was last written if it is still open. One per
// step of the chart (the newest of it), so the means have no more points than the candles.
function addWindow(w) {
  const entry = card(w.symbol_coin);
  const x = Math.min(ms(w.end_time), w.updated_at ? ms(w.updated_at) : ms(w.end_time));
  entry.windows.set(Math.floor(ms(w.start_time) / entry.stepMs),
                    { x, am: w.arithmetic_mean, gm: w.geometric_mean, hm: w.harmonic_mean });
  entry.windowS = w.window_seconds;
  if (!entry.current || ms(w.start_time) >= ms(entry.current.start_time)) entry.current = w;
  const shown = entry.current;
  const el = entry.element;
  el.querySelector(".am").textContent = usd(shown.arithmetic_mean);
  el.querySelector(".gm").textContent = usd(shown.geometric_mean);
  el.querySelector(".hm").textContent = usd(shown.harmonic_mean);
  el.querySelector(".window").textContent = `${shown.window_seconds / 60} min window to ` +
    `${clock(ms(shown.end_time))}, ${shown.tick_count} ticks`;
  trim(entry);
}

// Keep the span (the x axis is exactly it) and draw the price as the chosen style.
function trim(entry) {
  const until = Date.now();
  const since = until - spanMs();
  for (const [start, point] of entry.candles) if (point.x < since) entry.candles.delete(start);
  for (const [step, point] of entry.windows) if (point.x < since) entry.windows.delete(step);
  const [price, ...means] = entry.chart.data.datasets;
  price.type = view.style === "candles" ? "candlestick" : "line";
  price.data = [...entry.candles.values()].sort((a, b) => a.x - b.x);
  const windows = [...entry.windows.values()].sort((a, b) => a.x - b.x);
  ["am", "gm", "hm"].forEach((key, i) => {
    means[i].data = windows.map((p) => ({ x: p.x, y: p[key] }));
  });
  Object.assign(entry.chart.options.scales.x, { min: since, max: until });
  entry.element.dataset.pricePoints = String(price.data.length);
  entry.chart.update("none");
}

const plotWidth = (chart) => Math.floor(chart.chartArea ? chart.chartArea.width : chart.width);

// The span's candles and windows of a coin, at the interval the chart's width allows.
async function loadHistory(symbol) {
  const entry = card(symbol);
  const load = ++entry.load; // a later load (another span) wins
  const until = Date.now();
  const span = spanMs();
  const interval = intervalFor(span, plotWidth(entry.chart));
  const length = INTERVALS[interval];
  // The windows from one window's length before the span: the first is drawn at its start.
  const from = until - span - entry.windowS * 1000;
  const count = (since) => Math.floor((until - since) / length) + 1;
  const iso = (t) => encodeURIComponent(new Date(t).toISOString());
  const [candles, windows] = await Promise.all([
    getJSON(`/candles/${symbol}?interval=${interval}&since=${iso(until - span)}` +
            `&until=${iso(until)}&limit=${count(until - span)}`, []),
    getJSON(`/aggregates/${symbol}?since=${iso(from)}&every=${length / 1000}` +
            `&limit=${count(from)}`, []),
  ]);
  if (load !== entry.load) return;
  Object.assign(entry, { interval, stepMs: length, source: candles[0]?.source || null });
  entry.candles = new Map(candles.map((c) => [ms(c.start), pricePoint(
    ms(c.start), c.open, c.high, c.low, c.close, ms(c.start))]));
  entry.windows = new Map();
  windows.filter((w) => ms(w.end_time) <= Date.now()).forEach(addWindow);
  if (entry.current) addWindow(entry.current);
  Object.assign(entry.element.dataset, { span: view.span, interval, style: view.style });
  trim(entry);
  // The y axis's labels, now drawn, may leave fewer pixels than guessed: coarser, once more.
  if (INTERVALS[intervalFor(span, plotWidth(entry.chart))] > length) await loadHistory(symbol);
}

// The recorded gaps of the span the chart shows, drawn as bands and told in the caption.
function showGaps(symbol, gaps) {
  const entry = card(symbol);
  const chart = entry.chart;
  chart.$gaps = gaps.map((g) => ({ ...g, from: ms(g.start), to: ms(g.end) }));
  const count = (status) => gaps.filter((g) => g.status === status).length;
  const counts = { open: count("open"), unrepairable: count("unrepairable"),
                   repaired: count("repaired") };
  const caption = entry.element.querySelector(".gaps");
  caption.replaceChildren();
  const parts = [];
  if (counts.open) parts.push(["open", `${counts.open} gap${counts.open > 1 ? "s" : ""} open`]);
  if (counts.unrepairable) parts.push(["unrepairable", `${counts.unrepairable} unrepairable`]);
  if (counts.repaired) parts.push(["repaired", `${counts.repaired} repaired`]);
  parts.forEach(([status, text], i) => {
    if (i) caption.append(", ");
    const key = document.createElement("span");
    key.className = `gap-key ${status}`;
    caption.append(key, text);
  });
  caption.append(parts.length ? " in this view" : "no gaps in this view");
  caption.title = chart.$gaps.map(describeGap).join("\n");
  caption.classList.toggle("alert", counts.open + counts.unrepairable > 0);
  Object.entries(counts).forEach(([status, n]) => { caption.dataset[status] = String(n); });
  chart.update("none");
}

async function loadGaps(symbol) {
  const until = new Date();
  const since = new Date(until.getTime() - spanMs());
  const span = `since=${encodeURIComponent(since.toISOString())}` +
    `&until=${encodeURIComponent(until.toISOString())}`;
  try {
    showGaps(symbol, await getJSON(`/gaps/${symbol}?${span}`));
  } catch (error) { // MongoDB down: say so rather than "no gaps"
    const entry = card(symbol);
    entry.chart.$gaps = [];
    entry.chart.update("none");
    const caption = entry.element.querySelector(".gaps");
    caption.textContent = "gaps unknown: the gap ledger did not answer";
    caption.title = error.message;
    caption.classList.add("alert");
    ["open", "unrepairable", "repaired"].forEach((status) => delete caption.dataset[status]);
  }
}

const loadAllGaps = () => Promise.all([...cards.keys()].map(loadGaps));

function showPipeline(p) {
  const set = (id, value) => { document.getElementById(id).textContent = value; };
  const count = (v) => (v == null ? "–" : v.toLocaleString("en-US"));
  set("p-rate", p.ticks_per_s == null ? "–" : number(p.ticks_per_s, 1));
  set("p-total", count(p.ticks_total));
  set("p-lag", count(p.consumer_lag));
  set("p-dlq", count(p.dlq_messages));
  set("p-docs", count(p.mongo_documents));
  set("p-fresh", p.freshness_s == null ? "–" : `${p.freshness_s.toFixed(1)} s`);
  const down = Object.entries(p.backends).filter(([, state]) => !state.up).map(([name]) => name);
  set("p-backends", down.length ? `down: ${down.join(", ")}` : "all up");
}

// The newest alerts, active or cleared; any failure (no /alerts, MongoDB down) reads as none.
async function loadAlerts() {
  const alerts = await getJSON(`/alerts?limit=${ALERTS_SHOWN}`).catch(() => []);
  const list = document.getElementById("alert-list");
  list.replaceChildren(...alerts.map((alert) => {
    const item = document.createElement("li");
    item.className = alert.cleared_at ? "cleared" : "active";
    item.dataset.rule = alert.rule;
    const when = document.createElement("time");
    when.dateTime = alert.fired_at;
    when.textContent = stamp(ms(alert.fired_at));
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = [alert.symbol, alert.message].filter(Boolean).join(": ");
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = (alert.cleared_at ? `cleared ${stamp(ms(alert.cleared_at))}`
      : "active") + (alert.delivered ? "" : ", not delivered");
    item.title = `${alert.rule} (${alert.kind})`;
    item.append(when, what, state);
    return item;
  }));
  if (!alerts.length) {
    const none = document.createElement("li");
    none.className = "empty";
    none.textContent = "no alerts";
    list.append(none);
  }
}

async function load() {
  const [latest, windows] = await Promise.all([getJSON("/latestPrice"), getJSON("/latestAggregate")]);
  latest.forEach(showPrice);
  windows.forEach(addWindow);
  await Promise.all(latest.map(({ symbol_coin: symbol }) => loadHistory(symbol)));
  await loadAllGaps();
  getJSON("/pipeline").then(showPipeline).catch(() => {});
}

// The span picker and the price style: every chart follows them.
function choose(control, value) {
  document.querySelectorAll(`#${control}s button`).forEach((button) => {
    button.setAttribute("aria-pressed", String(button.dataset[control] === value));
  });
  view[control] = value;
}

function controls() {
  document.querySelectorAll("#spans button").forEach((button) => {
    button.addEventListener("click", () => {
      choose("span", button.dataset.span);
      Promise.all([...cards.keys()].map(loadHistory)).then(loadAllGaps).catch(() => {});
    });
  });
  document.querySelectorAll("#styles button").forEach((button) => {
    button.addEventListener("click", () => {
      choose("style", button.dataset.style);
      cards.forEach((entry) => {
        entry.element.dataset.style = view.style;
        trim(entry);
      });
    });
  });
  // A chart whose width now allows another interval reloads at it.
  let resizing;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => cards.forEach((entry, symbol) => {
      if (intervalFor(spanMs(), plotWidth(entry.chart)) !== entry.interval) {
        loadHistory(symbol).catch(() => {});
      }
    }), 300);
  });
}

function listen() {
  const status = document.getElementById("connection");
  const source = new EventSource("/stream");
  source.onopen = () => { status.dataset.state = "live"; status.textContent = "live"; };
  source.onerror = () => { status.dataset.state = "down"; status.textContent = "reconnecting…"; };
  const on = (name, handle) => source.addEventListener(name, (e) => handle(JSON.parse(e.data)));
  on("latestPrice", (latest) => {
    const fresh = !cards.has(latest.symbol_coin);
    showPrice(latest);
    if (fresh) loadHistory(latest.symbol_coin).catch(() => {}); // a coin new since the load
  });
  on("candle", addCandle);
  on("aggregate", addWindow);
  on("pipeline", showPipeline);
  // The browser resumes from the last event id on its own; when the API can no longer
  // replay what was missed, it says `reset` and the page reloads its data.
  on("reset", () => load().catch(() => {}));
}

controls();
setInterval(() => cards.forEach(showAge), 1000);
setInterval(loadAllGaps, GAPS_REFRESH_S * 1000);
setInterval(loadAlerts, ALERTS_REFRESH_S * 1000);
loadAlerts();
load().catch((error) => {
  document.getElementById("connection").textContent = `API error: ${error.message}`;
}).finally(listen);
