"""The stores side by side: GET by id on SQLite and on PostgreSQL (one worker each), and
registration on PostgreSQL with one worker and with two, all in one run.

    .venv/bin/python bench/store_bench.py
    .venv/bin/python bench/store_bench.py --duration 5 --connections 32

Prints PostgreSQL GET / SQLite GET (target >= 60 %) and PostgreSQL register, 2 workers / 1
worker (target >= 1.5x). GETs use a key with `sources:read` only (see stack_bench.py). The
PostgreSQL stores are throwaway databases on --pg-url, dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from http_bench import (
    DEFAULT_PG_URL,
    SCENARIOS,
    Filler,
    Postgres,
    Run,
    add_wrk_options,
    make_store,
    measure,
    start_tdb,
    write_lua,
)
from stack_bench import read_key

PG_OVER_SQLITE_GET_TARGET = 0.60
TWO_OVER_ONE_REGISTER_TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_wrk_options(p)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    opts = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tdb-store-bench-"))
    pg = Postgres(opts.pg_url)
    runs: dict[str, Run] = {}
    try:
        scripts = write_lua(tmp)
        for label, kind, workers, scenario in (
            ("GET sqlite 1w", "sqlite", 1, "get"),
            ("GET postgres 1w", "postgres", 1, "get"),
            ("register postgres 1w", "postgres", 1, "register"),
            ("register postgres 2w", "postgres", 2, "register"),
        ):
            store = make_store(kind, tmp, pg, len(runs))
            with contextlib.ExitStack() as stack:
                server, token = start_tdb(stack, tmp, store, workers, None)
                filler = Filler(server, token, opts.connections, tmp)
                filler.fill_to(1)
                if scenario == "get":
                    token = read_key(store, tmp)
                    method, path = "GET", f"/v1/sources/{filler.first_id}"
                else:
                    method, path = "POST", "/v1/sources"
                run = measure(
                    SCENARIOS[scenario],
                    "tdb",
                    server.base_url,
                    path,
                    method,
                    token=token,
                    scripts=scripts,
                    opts=opts,
                    store=kind,
                    workers=workers,
                    settle=server,
                )
            runs[label] = run
            cpu = f"{run.cpu_us:7.0f} us" if run.cpu_us is not None else "      ?"
            print(
                f"  {label:22} {run.rps:9.1f} req/s  p50 {run.p50_ms:6.2f} ms"
                f"  p99 {run.p99_ms:6.2f} ms  tdb CPU/request {cpu}  errors {run.error_count}"
                f"  (load {os.getloadavg()[0]:.1f})"
            )
    finally:
        if pg.created:
            pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    get_ratio = runs["GET postgres 1w"].rps / runs["GET sqlite 1w"].rps
    scale = runs["register postgres 2w"].rps / runs["register postgres 1w"].rps
    print(
        f"target PostgreSQL GET >= {PG_OVER_SQLITE_GET_TARGET:.0%} of SQLite's (1 worker each): "
        f"{get_ratio:.1%}  {'PASS' if get_ratio >= PG_OVER_SQLITE_GET_TARGET else 'FAIL'}"
    )
    print(
        f"target PostgreSQL register, 2 workers >= {TWO_OVER_ONE_REGISTER_TARGET:.1f}x 1 worker: "
        f"{scale:.2f}x  {'PASS' if scale >= TWO_OVER_ONE_REGISTER_TARGET else 'FAIL'}"
    )
    pg_cpu, sqlite_cpu = (runs[f"GET {kind} 1w"].cpu_us for kind in ("postgres", "sqlite"))
    if pg_cpu is not None and sqlite_cpu is not None:
        print(
            f"tdb CPU per GET (steadier on a busy machine): PostgreSQL {pg_cpu:.0f} us,"
            f" SQLite {sqlite_cpu:.0f} us; SQLite's / PostgreSQL's {sqlite_cpu / pg_cpu:.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
