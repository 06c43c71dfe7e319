"""Server stacks: tdb and the bare app, each on the fast stack and on the pure-Python one.

`tdb serve` runs uvicorn on uvloop + httptools with tdb's read deadlines and connection cap
(`--stack fast`, the default); `--stack pure` is uvicorn on asyncio + h11, what an install with
nothing else gives. In one run this measures GET by id on all four and prints the two bars:

- tdb on the fast stack / the bare app on the fast stack (the framework ceiling, same stack);
- tdb on the fast stack / tdb on the pure stack (what the stack itself gains).

tdb is asked with a key that has `sources:read` only (secrets masked): a key that may read
secrets makes every GET that shows one record an audit event, a write.

    .venv/bin/python bench/stack_bench.py
    .venv/bin/python bench/stack_bench.py --store postgres --duration 5 --rounds 2

Rounds interleave the four servers, so that a change in the machine's load hits them alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bare_app import SOURCE_ID
from http_bench import (
    BENCH,
    DEFAULT_PG_URL,
    SCENARIOS,
    Filler,
    Postgres,
    Run,
    Server,
    Store,
    add_wrk_options,
    base_env,
    free_port,
    make_store,
    measure,
    serving,
    start_tdb,
    tdb_server,
    venv_bin,
    write_lua,
)

GET_OVER_BARE_TARGET = 0.80
FAST_OVER_PURE_TARGET = 1.4


def read_key(store: Store, workdir: Path) -> str:
    """A token of a new key with `sources:read` only: its GETs show secrets masked, so they
    read and write nothing else (a key that sees secrets adds an audit event to every GET)."""
    env = base_env()
    env["TDB_DATABASE_URL"] = store.url
    if store.secret_key:
        env["TDB_SECRET_KEY"] = store.secret_key
    done = subprocess.run(
        [
            str(venv_bin() / "tdb"),
            "keys",
            "create",
            "--name",
            "bench-read",
            "--scope",
            "sources:read",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def bare_server(workdir: Path, workers: int, stack: str) -> Server:
    env = base_env()
    env["PYTHONPATH"] = str(BENCH)
    port = free_port()
    launch = (
        "import sys; from entrypoints.http.serving import serve; "
        "serve('bare_app:app', '127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), stack=sys.argv[3])"
    )
    argv = [str(venv_bin() / "python"), "-c", launch, str(port), str(workers), stack]
    return Server(f"bare-{stack}-{port}", argv, env, workdir, port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_wrk_options(p)
    p.add_argument("--workers", type=int, default=1, help="workers of every server (1)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds (1)")
    p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    opts = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tdb-stack-bench-"))
    pg = Postgres(opts.pg_url)
    scenario = SCENARIOS["get"]
    runs: dict[str, list[Run]] = {}
    try:
        scripts = write_lua(tmp)
        store = make_store(opts.store, tmp, pg, 0)
        with contextlib.ExitStack() as stack:
            fast, token = start_tdb(stack, tmp, store, opts.workers, None)
            filler = Filler(fast, token, opts.connections, tmp)
            filler.fill_to(1)
            token = read_key(store, tmp)
            pure = tdb_server(tmp, store.url, store.secret_key, opts.workers)
            pure.argv += ["--stack", "pure"]
            stack.enter_context(serving(pure))
            servers = {
                "tdb fast": (fast, token, f"/v1/sources/{filler.first_id}"),
                "tdb pure": (pure, token, f"/v1/sources/{filler.first_id}"),
            }
            for name in ("fast", "pure"):
                bare = stack.enter_context(serving(bare_server(tmp, opts.workers, name)))
                servers[f"bare {name}"] = (bare, None, f"/v1/sources/{SOURCE_ID}")
            for _ in range(opts.rounds):
                for label, (server, auth, path) in servers.items():
                    run = measure(
                        scenario,
                        label,
                        server.base_url,
                        path,
                        "GET",
                        token=auth,
                        scripts=scripts,
                        opts=opts,
                        store=store.kind,
                        workers=opts.workers,
                        settle=server,
                    )
                    runs.setdefault(label, []).append(run)
                    print(
                        f"  {label:9} {run.rps:9.1f} req/s  p50 {run.p50_ms:6.2f} ms"
                        f"  p99 {run.p99_ms:6.2f} ms  errors {run.error_count}"
                    )
    finally:
        if pg.created:
            pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    rps = {label: sum(r.rps for r in rs) / len(rs) for label, rs in runs.items()}
    print(
        f"\nGET by id, store {opts.store}, {opts.workers} worker(s), {opts.connections} conn, "
        f"{opts.rounds} round(s) of {opts.duration:g} s, mean req/s:"
    )
    for label, value in rps.items():
        print(f"  {label:9} {value:9.1f}")
    over_bare = rps["tdb fast"] / rps["bare fast"]
    over_pure = rps["tdb fast"] / rps["tdb pure"]
    bare_gain = rps["bare fast"] / rps["bare pure"]
    print(
        f"target tdb/bare on the same (fast) stack >= {GET_OVER_BARE_TARGET:.0%}: "
        f"{over_bare:.1%}  {'PASS' if over_bare >= GET_OVER_BARE_TARGET else 'FAIL'}"
    )
    print(
        f"target tdb fast/pure stack >= {FAST_OVER_PURE_TARGET:.1f}x: {over_pure:.2f}x "
        f"(+{rps['tdb fast'] - rps['tdb pure']:.0f} req/s)  "
        f"{'PASS' if over_pure >= FAST_OVER_PURE_TARGET else 'FAIL'}"
    )
    load = os.getloadavg()[0]
    print(f"(the bare app gains {bare_gain:.2f}x from the same stack; load average {load:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
