"""The API beside a bare cassandra-driver loop of the same query, and the push delay.

The API runs as `crypto-platform api` in a process of its own (as deployed); the load
comes from this process: `CLIENTS` concurrent keep-alive connections for the closed-loop
rate, a steady 200 requests/s for the latency, and a Server-Sent Events subscriber that
times each price from its Cassandra write to its arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from crypto_platform.bench.fixtures import fresh, median, percentile
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import TICK_VALUES, CassandraTarget, day_of, write_rows
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.storage import cassandra

CLIENTS = 32
PACED_RATE = 200
PUSH_SAMPLES = 60
WARM_UP_S = 10.0


def _write(target: CassandraTarget, symbol: str, price: float) -> None:
    """One tick of now through the Spark job's own writer."""
    now = int(time.time() * 1000)
    tick: dict[str, Any] = dict.fromkeys(TICK_VALUES)
    tick |= {"symbol": symbol, "source": "simulated", "price": price, "quote": "USD"}
    tick |= {"event_time_ms": now, "ingest_time_ms": now, "day": day_of(now)}
    write_rows(target, ticks={name: [value] for name, value in tick.items()})


def _bare_rate(settings: Settings, symbols: list[str], seconds: float) -> float:
    """A bare loop of the API's query: prepared, synchronous, one after another."""
    cluster, session = cassandra.connect(settings)
    try:
        query = session.prepare(
            f"SELECT * FROM {settings.cassandra_keyspace}.latest_prices WHERE symbol = ?"
        )
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            assert session.execute(query, (symbols[done % len(symbols)],)).one() is not None
            done += 1
        return done / (time.perf_counter() - started)
    finally:
        cluster.shutdown()


@contextlib.contextmanager
def _api_process(settings: Settings) -> Iterator[str]:
    """`crypto-platform api` on a free port, stopped with SIGTERM at the end."""
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "crypto_platform", "api", "--port", str(port)],
        env={**os.environ, **settings.as_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/latestPrice", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("crypto-platform api did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


class _Connection:
    """One keep-alive HTTP/1.1 connection doing bare GETs over asyncio streams.

    An HTTP client library costs about a millisecond of CPU per request here, which on
    two cores would be taken from the server being measured. Every answer must be a 200
    with its whole body.
    """

    def __init__(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.host, self.reader, self.writer = host, reader, writer

    @classmethod
    async def open(cls, base: str) -> _Connection:
        host, port = base.removeprefix("http://").split(":")
        return cls(host, *await asyncio.open_connection(host, int(port)))

    async def get(self, path: str) -> None:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        if not head.startswith(b"HTTP/1.1 200") or length is None:
            raise RuntimeError(f"unexpected answer: {head[:80]!r}")
        await self.reader.readexactly(int(length.group(1)))

    def close(self) -> None:
        self.writer.close()


def _figures(latencies: list[float]) -> dict:
    return {
        "requests": len(latencies),
        "p50_ms": round(median(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


async def _closed_loop(base: str, symbols: list[str], seconds: float) -> dict:
    """`CLIENTS` connections, each sending its next GET as soon as the last one answered."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def one_client(index: int) -> None:
        connection = await _Connection.open(base)
        try:
            while time.perf_counter() < end:
                started = time.perf_counter()
                await connection.get(f"/latestPrice/{symbols[index % len(symbols)]}")
                latencies.append(time.perf_counter() - started)
                index += 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(CLIENTS)))
    return {"rps": round(len(latencies) / (time.perf_counter() - started)), **_figures(latencies)}


async def _paced(base: str, symbols: list[str], rate: int, seconds: float) -> dict:
    """A steady `rate` of GETs (open loop), each timed from when it was due to be sent."""
    latencies: list[float] = []
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(CLIENTS):
        idle.put_nowait(await _Connection.open(base))

    async def one(path: str, due: float) -> None:
        connection = await idle.get()
        await connection.get(path)
        latencies.append(time.perf_counter() - due)
        idle.put_nowait(connection)

    tasks = []
    started = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(f"/latestPrice/{symbols[i % len(symbols)]}", due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return {"rate": rate, **_figures(latencies)}


async def _push_delays(base: str, target: CassandraTarget, samples: int) -> dict:
    """Write a price, time it until the /stream subscriber sees it; `samples` times."""
    written: dict[float, float] = {}
    delays: list[float] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("GET", "/stream") as stream,
    ):
        lines = stream.aiter_lines()
        async for line in lines:  # the subscription is live once its comment arrives
            if line.startswith(":"):
                break
        await asyncio.sleep(1)  # the poller has taken its first look

        async def writer() -> None:
            for i in range(samples):
                price = 50_000.0 + i
                written[price] = time.perf_counter()
                await asyncio.to_thread(_write, target, "BTC", price)
                await asyncio.sleep(0.25 + (i % 7) * 0.013)  # no lock-step with the poller

        task = asyncio.create_task(writer())
        event = None
        async for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "price":
                price = json.loads(line.removeprefix("data: "))["price"]
                if price in written:
                    delays.append(time.perf_counter() - written[price])
                    if len(delays) == samples:
                        break
        await task
    figures = _figures(delays)
    return {"samples": figures.pop("requests"), **figures}


def api_throughput_and_latency(settings: Settings, seconds: float) -> dict:
    """Every API figure of the benchmark, on a keyspace of its own."""
    own = fresh(settings, "api")
    target = CassandraTarget.from_settings(own)
    symbols = ["BTC", "ETH", "SOL"]
    for index, symbol in enumerate(symbols):
        _write(target, symbol, 100.0 * (index + 1))
    # Cassandra's JIT warms up over the first seconds of load: both sides get it warm.
    _bare_rate(own, symbols, WARM_UP_S)
    bare = _bare_rate(own, symbols, seconds)
    with _api_process(own) as base:
        asyncio.run(_closed_loop(base, symbols, WARM_UP_S / 2))
        loaded = asyncio.run(_closed_loop(base, symbols, seconds))
        paced = asyncio.run(_paced(base, symbols, PACED_RATE, seconds))
        push = asyncio.run(_push_delays(base, target, PUSH_SAMPLES))
    return {
        "seconds": seconds,
        "clients": CLIENTS,
        "api": loaded,
        "bare_per_s": round(bare),
        "ratio": round(loaded["rps"] / bare, 3),
        "paced": paced,
        "push": push,
    }
