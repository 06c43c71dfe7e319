"""What keeping the schema history costs a schema inspection when nothing changed.

Starts a real `tdb serve` and, on the same store, the same app with the history's store taken
out of the path (`history_off_app.py`: the newest fingerprint is known in advance). Both serve
`GET /v1/sources/{id}/schema` of one live PostgreSQL table, whose columns never change during the
run, so nothing is recorded: the figure is what comparing with the newest snapshot costs.
Runs alternate between the two servers; the ratio of their requests per second (target >= 0.95)
is taken over the same run. Run with the project's venv:

    .venv/bin/python bench/schema_history_bench.py
    .venv/bin/python bench/schema_history_bench.py --store postgres --rounds 3 --duration 5

Reuses the servers, wrk driver and throwaway databases of `http_bench.py` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from http_bench import (
    BENCH,
    SCENARIOS,
    Postgres,
    Server,
    base_env,
    free_port,
    measure,
    secret_key,
    serving,
    tdb_server,
    venv_bin,
    write_lua,
)

RATIO_TARGET = 0.95


def baseline_server(
    workdir: Path, database_url: str, key: str | None, workers: int, printed: str
) -> Server:
    env = base_env()
    env["TDB_DATABASE_URL"] = database_url
    if key:
        env["TDB_SECRET_KEY"] = key
    env["BENCH_FINGERPRINT"] = printed
    env["PYTHONPATH"] = str(BENCH)
    port = free_port()
    # Served by the very function `tdb serve` uses: same workers, sockets and uvicorn options.
    launch = (
        "import sys; from entrypoints.http.serving import serve; "
        "serve('history_off_app:app', '127.0.0.1', int(sys.argv[1]), int(sys.argv[2]))"
    )
    argv = [str(venv_bin() / "python"), "-c", launch, str(port), str(workers)]
    return Server(f"history-off-{port}", argv, env, workdir, port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server, alternating")
    # Within what one source admits at once (a pool of 2 and 8 waiting): beyond, 503 busy.
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tdb-history-bench-"))
    pg = Postgres(opts.pg_url)
    scenario = SCENARIOS["schema"]
    try:
        scripts = write_lua(tmp)
        connection = pg.orders_table()
        if opts.store == "postgres":
            database_url, key = pg.store_url(), secret_key()
        else:
            database_url, key = f"sqlite:///{tmp / 'bench.sqlite3'}", None
        with serving(tdb_server(tmp, database_url, key, opts.workers)) as tdb:
            token = tdb.admin_token()
            assert token, tdb.log_tail()
            http = httpx.Client(
                base_url=tdb.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            body = {"name": "bench-orders", "source_type": "postgres", "connection": connection}
            source_id = http.post("/v1/sources", json=body).raise_for_status().json()["id"]
            path = f"/v1/sources/{source_id}/schema"
            printed = http.get(path).raise_for_status().json()["fingerprint"]
            with serving(
                baseline_server(tmp, database_url, key, opts.workers, printed)
            ) as baseline:
                runs: dict[str, list[float]] = {"history": [], "baseline": []}
                for round_ in range(opts.rounds):
                    order = [("history", tdb), ("baseline", baseline)]
                    for name, server in order if round_ % 2 == 0 else order[::-1]:
                        run = measure(
                            scenario,
                            name,
                            server.base_url,
                            path,
                            "GET",
                            scripts=scripts,
                            opts=opts,
                            token=token,
                            store=opts.store,
                            workers=opts.workers,
                            settle=server,
                        )
                        if run.error_count:
                            raise RuntimeError(f"{name}: errors {run.errors}")
                        runs[name].append(run.rps)
                        print(
                            f"  round {round_ + 1} {name:>8}: {run.rps:8.1f} req/s"
                            f"  p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms"
                        )
            snapshots = http.get(f"{path}/history").raise_for_status().json()
            if len(snapshots) != 1:
                raise RuntimeError(f"the columns changed during the run: {len(snapshots)}")
    finally:
        pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    history, baseline_rps = statistics.median(runs["history"]), statistics.median(runs["baseline"])
    ratio = history / baseline_rps
    verdict = "meets" if ratio >= RATIO_TARGET else "misses"
    print(
        f"GET schema, {opts.store} store, {opts.workers} worker(s), {opts.connections}"
        f" connections, median of {opts.rounds}: with history {history:.1f} req/s,"
        f" without {baseline_rps:.1f} req/s, ratio {ratio:.3f} ({verdict} the {RATIO_TARGET}"
        " target)"
    )
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"(total {time.monotonic() - started:.0f} s)")
    sys.exit(code)
