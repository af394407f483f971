// The live dashboard: a card and a chart per coin, fed by the API's REST endpoints once
// and then by the Server-Sent Events of /stream. Only real values are shown. The one thing
// read again on a timer is the gap ledger (/gaps), which no event announces.
"use strict";

const HISTORY_MINUTES = 30;
const MAX_POINTS = 600;
const STALE_S = 60;
const GAPS_REFRESH_S = 30;
const cards = new Map(); // symbol -> {element, chart, latest, windows: Map(start -> point), gaps}

const number = (value, digits) =>
  value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const digitsFor = (price) => (price >= 1000 ? 2 : price >= 1 ? 4 : 8);
const usd = (price) => "$" + number(price, digitsFor(price));
const ms = (iso) => Date.parse(iso);
const clock = (t) => new Date(t).toISOString().slice(11, 19);

async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
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

function makeChart(canvas) {
  const line = (label, color, dash) => ({
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: dash ? 1.5 : 2,
    borderDash: dash || [], pointRadius: 0, tension: 0,
  });
  const price = {
    ...line("price", "#4dabf7"),
    segment: { borderDash: (s) => (acrossGap(s) ? [2, 4] : undefined) },
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
        x: { type: "linear", ticks: { color: "#8d96ab", maxTicksLimit: 5, callback: clock },
             grid: { color: "#232b40" } },
        y: { ticks: { color: "#8d96ab", maxTicksLimit: 5 }, grid: { color: "#232b40" } },
      },
      plugins: {
        legend: { labels: { color: "#c9cfdc", boxWidth: 12, font: { size: 10 } } },
        tooltip: { callbacks: { title: (items) => clock(items[0].parsed.x) } },
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
                  windows: new Map(), gaps: [] };
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

function addPrices(symbol, points) {
  const entry = card(symbol);
  const data = entry.chart.data.datasets[0].data;
  for (const point of points) {
    const x = ms(point.timestamp);
    if (data.length && x <= data[data.length - 1].x) continue; // already drawn
    data.push({ x, y: point.price });
  }
  trim(entry);
}

// A window is drawn at its end, or when it was last written if it is still open.
function addWindow(w) {
  const entry = card(w.symbol_coin);
  const x = Math.min(ms(w.end_time), w.updated_at ? ms(w.updated_at) : ms(w.end_time));
  entry.windows.set(w.start_time, { x, am: w.arithmetic_mean, gm: w.geometric_mean,
                                    hm: w.harmonic_mean });
  const points = [...entry.windows.values()].sort((a, b) => a.x - b.x);
  ["am", "gm", "hm"].forEach((key, i) => {
    entry.chart.data.datasets[i + 1].data = points.map((p) => ({ x: p.x, y: p[key] }));
  });
  const el = entry.element;
  el.querySelector(".am").textContent = usd(w.arithmetic_mean);
  el.querySelector(".gm").textContent = usd(w.geometric_mean);
  el.querySelector(".hm").textContent = usd(w.harmonic_mean);
  el.querySelector(".window").textContent =
    `${w.window_seconds / 60} min window to ${clock(ms(w.end_time))}, ${w.tick_count} ticks`;
  trim(entry);
}

function trim(entry) {
  const since = Date.now() - HISTORY_MINUTES * 60_000;
  const price = entry.chart.data.datasets[0].data;
  while (price.length > MAX_POINTS || (price.length > 1 && price[0].x < since)) price.shift();
  for (const [start, point] of entry.windows) if (point.x < since) entry.windows.delete(start);
  entry.element.dataset.pricePoints = String(price.length);
  entry.chart.update("none");
}

// The recorded gaps of the span the chart shows, drawn as bands and told in the caption.
function showGaps(symbol, gaps) {
  const entry = card(symbol);
  const chart = entry.chart;
  chart.$gaps = gaps.map((g) => ({ ...g, from: ms(g.start), to: ms(g.end) }));
  // The x scale reaches the gaps too: an open gap at the head runs past the last tick.
  const since = Date.now() - HISTORY_MINUTES * 60_000;
  const x = chart.options.scales.x;
  const bounds = chart.$gaps.flatMap((g) => [g.from, g.to]);
  x.suggestedMin = bounds.length ? Math.max(since, Math.min(...bounds)) : undefined;
  x.suggestedMax = bounds.length ? Math.min(Date.now(), Math.max(...bounds)) : undefined;
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
  const since = new Date(until.getTime() - HISTORY_MINUTES * 60_000);
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

async function load() {
  const since = new Date(Date.now() - HISTORY_MINUTES * 60_000).toISOString();
  const [latest, windows] = await Promise.all([getJSON("/latestPrice"), getJSON("/latestAggregate")]);
  latest.forEach(showPrice);
  await Promise.all(latest.map(async ({ symbol_coin: symbol }) => {
    const [prices, history] = await Promise.all([
      getJSON(`/prices/${symbol}?since=${encodeURIComponent(since)}&limit=${MAX_POINTS}`),
      getJSON(`/aggregates/${symbol}?since=${encodeURIComponent(since)}`),
    ]);
    addPrices(symbol, prices);
    history.filter((w) => ms(w.end_time) <= Date.now()).forEach(addWindow);
  }));
  windows.forEach(addWindow);
  await loadAllGaps();
  getJSON("/pipeline").then(showPipeline).catch(() => {});
}

function listen() {
  const status = document.getElementById("connection");
  const source = new EventSource("/stream");
  source.onopen = () => { status.dataset.state = "live"; status.textContent = "live"; };
  source.onerror = () => { status.dataset.state = "down"; status.textContent = "reconnecting…"; };
  const on = (name, handle) => source.addEventListener(name, (e) => handle(JSON.parse(e.data)));
  on("price", (p) => addPrices(p.symbol_coin, [p]));
  on("latestPrice", showPrice);
  on("aggregate", addWindow);
  on("pipeline", showPipeline);
  // The browser resumes from the last event id on its own; when the API can no longer
  // replay what was missed, it says `reset` and the page reloads its data.
  on("reset", () => load().catch(() => {}));
}

setInterval(() => cards.forEach(showAge), 1000);
setInterval(loadAllGaps, GAPS_REFRESH_S * 1000);
load().catch((error) => {
  document.getElementById("connection").textContent = `API error: ${error.message}`;
}).finally(listen);
