"""HTTP benchmark: a real `tdb serve` against a bare Litestar app (the framework ceiling).

Both run under uvicorn with the same worker count; `wrk` drives each scenario for a fixed time
and the tdb/bare ratio of requests per second is what to watch. Run with the project's venv:

    .venv/bin/python bench/http_bench.py --duration 3
    .venv/bin/python bench/http_bench.py --store postgres --workers 2 --scenarios get,register
    .venv/bin/python bench/http_bench.py --matrix          # {sqlite, postgres} x {1, 2 workers}

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from driver import (
    LUA_DONE,
    LUA_REGISTER,
    Run,
    add_wrk_options,
    register_body,
    run_wrk,
    write_lua,
)
from report import check_targets, print_pair, print_summary, ratio
from scenarios import (
    MATRIX_SCENARIOS,
    SCENARIOS,
    Filler,
    bare_path,
    measure,
    register_many,
    tdb_path,
)
from servers import (
    BENCH,
    TOKEN_LINE,
    Postgres,
    Server,
    bare_server,
    base_env,
    free_port,
    secret_key,
    serving,
    tdb_server,
    venv_bin,
)

# The other bench scripts import the driver, the servers and the scenarios from here.
__all__ = [
    "BENCH",
    "DEFAULT_PG_URL",
    "LUA_DONE",
    "LUA_REGISTER",
    "SCENARIOS",
    "TOKEN_LINE",
    "Filler",
    "Postgres",
    "Run",
    "Server",
    "add_wrk_options",
    "base_env",
    "free_port",
    "make_store",
    "measure",
    "register_body",
    "register_many",
    "run_wrk",
    "secret_key",
    "serving",
    "start_tdb",
    "tdb_server",
    "venv_bin",
    "write_lua",
]

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


# --- the two modes ---------------------------------------------------------------------------


@dataclass
class Store:
    kind: str  # sqlite or postgres
    url: str
    secret_key: str | None = None


def make_store(kind: str, tmp: Path, pg: Postgres, n: int) -> Store:
    if kind == "sqlite":
        return Store("sqlite", f"sqlite:///{tmp / f'tdb-{n}.sqlite3'}")
    return Store("postgres", pg.store_url(), secret_key())


def start_tdb(
    stack: contextlib.ExitStack, tmp: Path, store: Store, workers: int, token: str | None
) -> tuple[Server, str]:
    server = stack.enter_context(serving(tdb_server(tmp, store.url, store.secret_key, workers)))
    token = token or server.admin_token()
    if not token:
        raise RuntimeError("tdb printed no admin token (the store already had a key): pass --token")
    return server, token


def run_scenarios(
    opts: argparse.Namespace, tmp: Path, pg: Postgres, scripts: dict[str, Path]
) -> list[tuple[Run, Run]]:
    names = [n for n in SCENARIOS if n in opts.scenarios]  # the canonical order: lists first
    if opts.database_url:
        store = Store(
            "postgres" if opts.database_url.startswith("postgres") else "sqlite",
            opts.database_url,
            os.environ.get("TDB_SECRET_KEY") or None,
        )
        if store.kind == "postgres" and not store.secret_key:
            store.secret_key = secret_key()
    else:
        store = make_store(opts.store, tmp, pg, 0)
    print(f"tdb store: {store.kind} ({store.url}), workers {opts.workers}")
    pairs = []
    with contextlib.ExitStack() as stack:
        tdb, token = start_tdb(stack, tmp, store, opts.workers, opts.token)
        filler = Filler(tdb, token, opts.connections, tmp)
        schema_id = None
        filler.fill_to(1)  # GET by id reads this one: a postgres source with a password
        if "schema" in names:
            connection = pg.orders_table()
            body = register_body(f"bench-orders-{filler.run}", **connection)
            if "password" not in connection:
                del body["connection"]["password"]
            schema_id = filler.add([body])[0]
        bare: Server | None = None
        bare_size = 0
        for name in names:
            scenario = SCENARIOS[name]
            filler.fill_to(scenario.sources)
            if scenario.bare_list_size and filler.count != scenario.sources:
                print(f"  note: the store holds {filler.count} sources, not {scenario.sources}")
            size = scenario.bare_list_size or bare_size or 1_000
            if bare is None or size != bare_size:
                if bare is not None:
                    bare.stop()
                bare = stack.enter_context(serving(bare_server(tmp, opts.workers, size)))
                bare_size = size
            method, path = tdb_path(scenario, filler, schema_id)
            tdb_run = measure(
                scenario,
                "tdb",
                tdb.base_url,
                path,
                method,
                token=token,
                scripts=scripts,
                opts=opts,
                store=store.kind,
                workers=opts.workers,
                settle=tdb,
            )
            method, path = bare_path(scenario)
            bare_run = measure(
                scenario,
                "bare",
                bare.base_url,
                path,
                method,
                token=None,
                scripts=scripts,
                opts=opts,
                store=store.kind,
                workers=opts.workers,
                settle=bare,
            )
            print_pair(scenario, tdb_run, bare_run)
            if scenario.name == "register":
                filler.count += tdb_run.requests  # roughly: the warm-up added more
            pairs.append((tdb_run, bare_run))
    return pairs


def run_matrix(
    opts: argparse.Namespace, tmp: Path, pg: Postgres, scripts: dict[str, Path]
) -> list[tuple[Run, Run]]:
    names = [n for n in MATRIX_SCENARIOS if n in opts.scenarios] or list(MATRIX_SCENARIOS)
    pairs = []
    n = 0
    for workers in (1, 2):
        bare_runs: dict[str, Run] = {}
        with serving(bare_server(tmp, workers, 1_000)) as bare:
            for name in names:
                method, path = bare_path(SCENARIOS[name])
                bare_runs[name] = measure(
                    SCENARIOS[name],
                    "bare",
                    bare.base_url,
                    path,
                    method,
                    token=None,
                    scripts=scripts,
                    opts=opts,
                    store="-",
                    workers=workers,
                    settle=bare,
                )
        for kind in ("sqlite", "postgres"):
            n += 1
            store = make_store(kind, tmp, pg, n)
            print(f"tdb: store {kind}, {workers} worker(s)")
            with contextlib.ExitStack() as stack:
                tdb, token = start_tdb(stack, tmp, store, workers, None)
                filler = Filler(tdb, token, opts.connections, tmp)
                filler.fill_to(1)
                for name in names:
                    scenario = SCENARIOS[name]
                    method, path = tdb_path(scenario, filler, None)
                    tdb_run = measure(
                        scenario,
                        "tdb",
                        tdb.base_url,
                        path,
                        method,
                        token=token,
                        scripts=scripts,
                        opts=opts,
                        store=kind,
                        workers=workers,
                        settle=tdb,
                    )
                    print_pair(scenario, tdb_run, bare_runs[name])
                    pairs.append((tdb_run, bare_runs[name]))
    order = {name: i for i, name in enumerate(names)}
    pairs.sort(key=lambda p: (order[p[0].scenario], p[0].store, p[0].workers))
    return pairs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_wrk_options(p)
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers, tdb and bare alike (1)")
    p.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="tdb's store: a temp SQLite file, or a throwaway database on --pg-url",
    )
    p.add_argument(
        "--database-url",
        help="tdb's store as given (postgresql://... gets a generated TDB_SECRET_KEY "
        "unless one is set); overrides --store. It fills up with bench sources.",
    )
    p.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL server for throwaway databases ({DEFAULT_PG_URL})",
    )
    p.add_argument("--token", help="an admin token, when the store given already has keys")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)}",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="register and GET by id for {sqlite, postgres} x {1, 2 workers}",
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    opts = p.parse_args(argv)
    opts.scenarios = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    unknown = sorted(set(opts.scenarios) - set(SCENARIOS))
    if unknown:
        p.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "error: wrk is not installed. Install it (Debian/Ubuntu: `apt-get install -y wrk`, "
            "macOS: `brew install wrk`) and run again.",
            file=sys.stderr,
        )
        return 2
    if not (venv_bin() / "tdb").exists():
        print(
            f"error: no tdb executable in {venv_bin()}: run `pip install -e .` in the venv",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, str(BENCH))
    load = os.getloadavg()
    print(
        f"tdb HTTP bench: {opts.duration:g} s per run (+{opts.warmup:g} s warm-up), "
        f"{opts.connections} connections, {opts.threads} wrk thread(s); "
        f"{os.cpu_count()} CPUs, load {load[0]:.2f}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="tdb-bench-"))
    pg = Postgres(opts.pg_url)
    started = time.monotonic()
    try:
        scripts = write_lua(tmp)
        if opts.matrix:
            pairs = run_matrix(opts, tmp, pg, scripts)
        else:
            pairs = run_scenarios(opts, tmp, pg, scripts)
    finally:
        if pg.created:
            pg.drop_all()
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(pairs, opts.matrix)
    verdicts = {} if opts.matrix else check_targets(pairs)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "config": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()
                    },
                    "results": [asdict(r) for pair in pairs for r in pair],
                    "ratios": [
                        {
                            "scenario": t.scenario,
                            "store": t.store,
                            "workers": t.workers,
                            "tdb_over_bare_rps": ratio(t, b),
                        }
                        for t, b in pairs
                    ],
                    "targets": verdicts,
                },
                indent=2,
            )
        )
        print(f"wrote {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
