"""Benchmark the portal on loopback: concurrent large uploads, then a steady rate of history requests.

    .venv/bin/python -m benchmarks.portal            # 50 concurrent 10 MB uploads; 200 history req/s for 60 s
    .venv/bin/python -m benchmarks.portal --quick    # 10 concurrent 1 MB uploads; 20 req/s for 5 s
    .venv/bin/python -m benchmarks.portal --receipts 1000   # a longer history (default 200 receipts)
    .venv/bin/python -m benchmarks.portal --uploads 20 --upload-mb 10 --rate 50 --seconds 30

The portal runs as ``phmx serve`` in its own process (uvicorn, one worker) on 127.0.0.1 with a
fresh hub home: organisations, a submitter token, and one public NIST VXU message ingested, whose
JSON receipt is then copied under new submission ids so the history holds ``--receipts`` rows (a
busy submitter's year). Uploads go through ``POST /api/v1/submissions`` (multipart, streamed to the
landing zone, SHA-256 computed); the history is ``GET /api/v1/submissions`` (read from the
submitter's receipts through the portal's in-process receipt index: a folder listing per request
and a parse of each receipt the first time it is seen; the 200 newest rows answered). The
history requests are sent open-loop (one every 1/rate seconds whatever the latency), so a slow
server shows as latency and a lower achieved rate, not as a politely slower client. Figures:
latency p50/p95/p99/max, errors (any status other than the expected, or no answer within 10 s), achieved rate, upload
throughput; with the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
VXU = ROOT / "tests" / "conformance" / "hl7v2_vxu" / "nist_iz_001.hl7"
HISTORY_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _line(name: str, lat: list[float], errors: int, n: int, wall: float) -> str:
    ms = [x * 1000 for x in lat]
    return (f"{name}: {n} requests in {wall:.1f} s ({n / wall:.1f}/s), errors {errors}; latency ms "
            f"p50 {_pct(ms, .5):.0f}, p95 {_pct(ms, .95):.0f}, p99 {_pct(ms, .99):.0f}, max {max(ms, default=0):.0f}")


def _prepare(home: Path, receipts: int) -> tuple[dict[str, str], str]:
    """A hub home with organisations, a token, one ingested submission and its receipt copied to
    make ``receipts`` in all; returns (env, token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHMX_")}
    env.update(PHMX_HOME=str(home), PHMX_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    orgs = home / "portal" / "organisations.yaml"
    orgs.parent.mkdir(parents=True)
    orgs.write_text(yaml.safe_dump({"organisations": [
        {"id": "cair2", "name": "California Immunization Registry", "kind": "submitter", "submitter": "cair2"}]}))
    token = subprocess.run([sys.executable, "-m", "phmx.cli", "portal", "add-token", "--org", "cair2"], env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    landed = home / "landing" / "cair2" / "immunizations_vxu" / "2026-01" / "nist_iz_001.hl7"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(VXU.read_bytes())
    subprocess.run([sys.executable, "-m", "phmx.cli", "stage", "ingest", "--period", "2026-01"], env=env, check=True,
                   capture_output=True)
    real = next((home / "outbox" / "cair2" / "receipts").rglob("sub-*.json"))
    doc = json.loads(real.read_text())
    for i in range(1, receipts):
        sid = f"sub-{i:020x}"
        copy = {**doc, "submission_id": sid, "received_at": f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00"}
        (real.parent / f"{sid}.json").write_text(json.dumps(copy, indent=2))
    return env, token


async def _uploads(base: str, token: str, n: int, size: int) -> tuple[list[float], int, float]:
    msg = VXU.read_bytes()
    body = (msg * (size // len(msg) + 1))[:size]
    lat: list[float] = []
    errors = 0

    async def one(i: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            r = await client.post("/api/v1/submissions", data={"feed": "immunizations_vxu", "period": "2026-02"},
                                  files={"file": (f"bench_{i}.hl7", body)})
            if r.status_code != 201:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        lat.append(time.perf_counter() - t)

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600,
                                 limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, client) for i in range(n)))
        return lat, errors, time.perf_counter() - t0


async def _history(base: str, token: str, rate: float, seconds: float) -> tuple[list[float], int, int, float]:
    """Open-loop history requests: one every 1/rate s whatever the latency; latency from the
    scheduled send. aiohttp, not httpx: httpx's pool costs milliseconds of client CPU per request
    with hundreds of connections, which made the load generator, not the portal, the bottleneck."""
    import aiohttp

    lat: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession, scheduled: float) -> None:
        nonlocal errors
        try:
            async with session.get("/api/v1/submissions") as r:
                body = await r.read()
                # A non-empty JSON list, checked without parsing it (the client must stay cheap).
                if r.status != 200 or not body.startswith(b"[{"):
                    errors += 1
        except (aiohttp.ClientError, TimeoutError):
            errors += 1
        lat.append(time.perf_counter() - scheduled)

    # A request not answered within HISTORY_TIMEOUT_S counts as an error, so an overloaded server
    # ends the run seconds after the window instead of draining a queue of thousands.
    timeout = aiohttp.ClientTimeout(total=HISTORY_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                     timeout=timeout, connector=connector) as session:
        tasks = []
        t0 = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, at)))
        await asyncio.gather(*tasks)
        return lat, errors, n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--uploads", type=int, default=None)
    ap.add_argument("--upload-mb", type=float, default=None)
    ap.add_argument("--rate", type=float, default=None, help="history requests per second")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--receipts", type=int, default=None, help="receipts in the submitter's history (default 200)")
    args = ap.parse_args(argv)
    uploads = args.uploads or (10 if args.quick else 50)
    size = int((args.upload_mb or (1 if args.quick else 10)) * 2**20)
    rate = args.rate or (20 if args.quick else 200)
    seconds = args.seconds or (5 if args.quick else 60)
    receipts = args.receipts or (20 if args.quick else 200)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB; load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="phmx-bench-portal-") as tmp:
        home = Path(tmp) / "var"
        env, token = _prepare(home, receipts)
        port = _free_port()
        # The server's log goes to a file: a pipe nobody reads fills up and stops the server mid-run.
        server_log = (Path(tmp) / "serve.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "phmx.cli", "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=server_log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the portal did not start: "
                                     + (Path(tmp) / "serve.log").read_text(errors="replace")[-2000:])
                time.sleep(0.2)
            asyncio.run(_history(base, token, 2, 1))  # the first request fills the receipt index
            lat, errors, wall = asyncio.run(_uploads(base, token, uploads, size))
            print(_line(f"uploads ({uploads} concurrent x {size / 2**20:.0f} MB)", lat, errors, uploads, wall)
                  + f"; {uploads * size / 2**20 / wall:.0f} MB/s in total", flush=True)
            cpu = psutil.Process(server.pid)
            before, mine = cpu.cpu_times(), time.process_time()
            lat, errors, n, wall = asyncio.run(_history(base, token, rate, seconds))
            mine = time.process_time() - mine
            after = cpu.cpu_times()
            used = (after.user - before.user) + (after.system - before.system)
            print(_line(f"history of {receipts} receipts (target {rate:.0f}/s for {seconds:.0f} s)", lat, errors, n,
                        wall), flush=True)
            if lat:
                print(f"history mean latency {statistics.fmean(lat) * 1000:.0f} ms", flush=True)
            # What the server itself spent, whatever else the machine runs: its capacity per core.
            print(f"server CPU during the history phase: {used:.1f} s for {n} requests = {used / n * 1000:.2f} ms "
                  f"per request (one core: about {n / used if used else float('inf'):.0f} requests/s); the load generator: "
                  f"{mine:.1f} s ({mine / n * 1000:.2f} ms per request)", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server_log.close()
    print(f"load average after: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
