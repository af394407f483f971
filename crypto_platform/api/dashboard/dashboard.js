// The live dashboard: a card and a chart per coin, fed by the API's REST endpoints once
// and then by the Server-Sent Events of /stream (no polling). Only real values are shown.
"use strict";

const HISTORY_MINUTES = 30;
const MAX_POINTS = 600;
const STALE_S = 60;
const cards = new Map(); // symbol -> {element, chart, latest, windows: Map(start -> point)}

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

function makeChart(canvas) {
  const line = (label, color, dash) => ({
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: dash ? 1.5 : 2,
    borderDash: dash || [], pointRadius: 0, tension: 0,
  });
  return new Chart(canvas, {
    type: "line",
    data: {
      datasets: [
        line("price", "#4dabf7"),
        line("arithmetic mean", "#f7b731", [6, 3]),
        line("geometric mean", "#2ecc71", [2, 2]),
        line("harmonic mean", "#e056fd", [8, 3, 2, 3]),
      ],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      interaction: { mode: "nearest", intersect: false },
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
                  windows: new Map() };
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
load().catch((error) => {
  document.getElementById("connection").textContent = `API error: ${error.message}`;
}).finally(listen);
