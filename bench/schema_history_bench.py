"""What keeping the schema history costs a schema inspection when nothing changed.

Serves, on one store, tdb's own app (`entrypoints.http.asgi:app`) and the same app with the
history's store taken out of the path (`history_off_app.py`: the newest fingerprint is known in
advance), both launched alike through `entrypoints.http.serving.serve`, as `tdb serve` does. Both
answer `GET /v1/sources/{id}/schema` of one live PostgreSQL table whose columns never change, so
nothing is recorded: the difference is what comparing with the newest snapshot costs. Each round
runs the two back to back and gives one ratio of their requests per second; the order alternates
(on a busy machine the second run of a pair tends to be the faster), and the figure is the
geometric mean of the ratios (target >= 0.95): two runs taken seconds apart share the machine's
other load, so their ratio is steadier than either figure. Run with the project's venv:

    .venv/bin/python bench/schema_history_bench.py
    .venv/bin/python bench/schema_history_bench.py --store postgres --rounds 8 --duration 3

Reuses the wrk driver, servers and throwaway databases of `http_bench.py` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from http_bench import (
    BENCH,
    SCENARIOS,
    TOKEN_LINE,
    Postgres,
    Server,
    base_env,
    free_port,
    measure,
    secret_key,
    serving,
    venv_bin,
    write_lua,
)

RATIO_TARGET = 0.95


def server(name: str, app: str, env: dict[str, str], workdir: Path, workers: int) -> Server:
    port = free_port()
    launch = (
        "import sys; from entrypoints.http.serving import serve; "
        f"serve({app!r}, '127.0.0.1', int(sys.argv[1]), int(sys.argv[2]))"
    )
    argv = [str(venv_bin() / "python"), "-c", launch, str(port), str(workers)]
    return Server(f"{name}-{port}", argv, env, workdir, port)


def create_key(env: dict[str, str], workdir: Path) -> str:
    """A key made with the CLI (which migrates the store first): its token."""
    done = subprocess.run(
        [str(venv_bin() / "tdb"), "keys", "create", "--name", "bench"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = TOKEN_LINE.match(done.stdout.strip().splitlines()[-1])
    if found is None:
        raise RuntimeError(f"no token from tdb keys create:\n{done.stdout}\n{done.stderr}")
    return found.group(1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=8, help="pairs of runs (even: both orders)")
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
    ratios: list[float] = []
    rps: dict[str, list[float]] = {"history": [], "baseline": []}
    try:
        scripts = write_lua(tmp)
        connection = pg.orders_table()
        env = base_env()
        env["PYTHONPATH"] = str(BENCH)
        if opts.store == "postgres":
            env["TDB_DATABASE_URL"], env["TDB_SECRET_KEY"] = pg.store_url(), secret_key()
        else:
            env["TDB_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
            env.pop("TDB_SECRET_KEY", None)
        token = create_key(env, tmp)
        with serving(server("history", "entrypoints.http.asgi:app", env, tmp, opts.workers)) as tdb:
            http = httpx.Client(
                base_url=tdb.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            body = {"name": "bench-orders", "source_type": "postgres", "connection": connection}
            source_id = http.post("/v1/sources", json=body).raise_for_status().json()["id"]
            path = f"/v1/sources/{source_id}/schema"
            printed = http.get(path).raise_for_status().json()["fingerprint"]
            baseline_env = {**env, "BENCH_FINGERPRINT": printed}
            off = server("baseline", "history_off_app:app", baseline_env, tmp, opts.workers)
            with serving(off) as baseline:
                for round_ in range(opts.rounds):
                    pair = [("history", tdb), ("baseline", baseline)]
                    got: dict[str, float] = {}
                    for name, target in pair if round_ % 2 == 0 else pair[::-1]:
                        run = measure(
                            scenario,
                            name,
                            target.base_url,
                            path,
                            "GET",
                            scripts=scripts,
                            opts=opts,
                            token=token,
                            store=opts.store,
                            workers=opts.workers,
                            settle=target,
                        )
                        if run.error_count:
                            raise RuntimeError(f"{name}: errors {run.errors}")
                        got[name] = run.rps
                        rps[name].append(run.rps)
                    ratios.append(got["history"] / got["baseline"])
                    print(
                        f"  round {round_ + 1}: with history {got['history']:7.1f} req/s,"
                        f" without {got['baseline']:7.1f} req/s, ratio {ratios[-1]:.3f}"
                    )
            snapshots = http.get(f"{path}/history").raise_for_status().json()
            if len(snapshots) != 1:
                raise RuntimeError(f"the columns changed during the run: {len(snapshots)}")
    finally:
        pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = statistics.geometric_mean(ratios)
    verdict = "meets" if ratio >= RATIO_TARGET else "misses"
    print(
        f"GET schema, {opts.store} store, {opts.workers} worker(s), {opts.connections}"
        f" connections: geometric mean of {opts.rounds} paired ratios {ratio:.3f} ({verdict} the"
        f" {RATIO_TARGET} target); median req/s with history"
        f" {statistics.median(rps['history']):.1f}, without"
        f" {statistics.median(rps['baseline']):.1f}"
    )
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"(total {time.monotonic() - started:.0f} s)")
    sys.exit(code)
