"""A wide CSV against a real `tdb serve`: 40 concurrent inspections, /healthz, RSS, CPU after.

The file of the attack: records of hundreds of thousands of empty fields. Each shape is
registered once and inspected by `--concurrency` clients at once while a prober asks for
`/healthz` every 20 ms and a sampler reads the server's RSS (every process in its group).
Bars: every inspection answers within the schema bound (connect timeout + 1 s), RSS under
300 MB, `/healthz` under 100 ms, and no CPU burnt once the answers are in.

    .venv/bin/python bench/wide_csv.py
    .venv/bin/python bench/wide_csv.py --concurrency 40 --rounds 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import Server, serving, tdb_server

SHAPES = {
    # The file: two lines of 1 048 576 commas (each longer than the 1 MiB sample).
    "two-lines-of-1Mi-commas": ("," * 1_048_576 + "\n") * 2,
    # The same width cut to fit the sample: two records of 524 288 fields.
    "two-records-of-512Ki-fields": ("," * 524_287 + "\n") * 2,
    # The widest accepted: 1600 columns, as many rows as fit in the sample.
    "1600-columns": ",".join(f"c{i}" for i in range(1600)) + "\n" + ("1," * 1599 + "1\n") * 300,
}
BOUND_S = 5 + 1
RSS_BAR_MB = 300
HEALTHZ_BAR_MS = 100


def rss_mb(group: int) -> float:
    """Resident memory of every process in this process group, in MB."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == group:
                status = (stat.parent / "status").read_text()
                line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
                total += int(line.split()[1])
        except (OSError, ValueError, IndexError, StopIteration):
            continue
    return total / 1024


def quiet_healthz(server: Server, seconds: float = 3.0) -> dict[str, float]:
    """/healthz with no attack, every 20 ms: the machine's own noise, to read the rest against."""
    times = []
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            http.get("/healthz")
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    return {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def probe(base_url: str, pid: int, stop: Any, out: Any) -> None:
    """In a process of its own, so that the client threads' work does not delay the probe:
    /healthz every 20 ms and the server's RSS, until `stop` is set; the samples go to `out`."""
    healthz, peak = [], 0.0
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while not stop.is_set():
            started = time.perf_counter()
            http.get("/healthz")
            healthz.append((time.perf_counter() - started) * 1000)
            peak = max(peak, rss_mb(pid))
            stop.wait(0.02)
    out.put((healthz, peak))


def attack(server: Server, token: str, source_id: str, concurrency: int) -> dict[str, object]:
    assert server.proc is not None
    auth = {"Authorization": f"Bearer {token}"}
    context = multiprocessing.get_context("fork")  # before any client thread exists
    stop, out = context.Event(), context.Queue()
    prober = context.Process(target=probe, args=(server.base_url, server.proc.pid, stop, out))
    prober.start()
    # The clients are made before the attack: making one costs CPU (an SSL context) that would
    # otherwise be spread over the measurement.
    clients = [
        httpx.Client(base_url=server.base_url, headers=auth, timeout=60) for _ in range(concurrency)
    ]

    def inspect(client: httpx.Client) -> tuple[int, str, float]:
        started = time.perf_counter()
        try:
            response = client.get(f"/v1/sources/{source_id}/schema")
        except httpx.HTTPError as exc:  # a server that stalls: counted, not fatal
            return 0, type(exc).__name__, time.perf_counter() - started
        reason = response.json().get("reason", "") if response.status_code != 200 else ""
        return response.status_code, reason, time.perf_counter() - started

    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(inspect, clients))
    for client in clients:
        client.close()
    cpu_at_answers = server.cpu_seconds() or 0.0
    time.sleep(2.0)  # a window in which abandoned work, if any, would show as CPU time
    cpu_after = (server.cpu_seconds() or 0.0) - cpu_at_answers
    stop.set()
    healthz, peak = out.get(timeout=60)
    prober.join()
    return {
        "answers": dict(Counter(f"{status} {reason}".strip() for status, reason, _ in answers)),
        "slowest_s": round(max(t for _, _, t in answers), 3),
        "healthz_p50_ms": round(statistics.median(healthz), 1),
        "healthz_p99_ms": round(statistics.quantiles(healthz, n=100, method="inclusive")[98], 1),
        "healthz_max_ms": round(max(healthz), 1),
        "peak_rss_mb": round(peak, 1),
        "cpu_in_2s_after_answers_s": round(cpu_after, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="tdb-wide-") as tmp:
        workdir = Path(tmp)
        (workdir / "data").mkdir()
        for name, content in SHAPES.items():
            (workdir / "data" / f"{name}.csv").write_text(content)
        server = tdb_server(workdir, f"sqlite:///{workdir / 'tdb.sqlite3'}", None, 1)
        with serving(server):
            token = server.admin_token()
            assert token, server.log_tail()
            auth = {"Authorization": f"Bearer {token}"}
            print(f"/healthz with no attack: {quiet_healthz(server)}")
            for name in SHAPES:
                body = {"name": name, "source_type": "csv", "connection": {"path": f"{name}.csv"}}
                created = httpx.post(f"{server.base_url}/v1/sources", json=body, headers=auth)
                source_id = created.json()["id"]
                for round_ in range(args.rounds):
                    result = attack(server, token, source_id, args.concurrency)
                    ok = (
                        result["slowest_s"] < BOUND_S  # type: ignore[operator]
                        and result["peak_rss_mb"] < RSS_BAR_MB  # type: ignore[operator]
                        and result["healthz_max_ms"] < HEALTHZ_BAR_MS  # type: ignore[operator]
                    )
                    failed |= not ok
                    print(f"{name} round {round_ + 1}: {'PASS' if ok else 'FAIL'} {result}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
