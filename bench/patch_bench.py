"""PATCH against register: `PATCH /v1/sources/{id}` requests per second as a ratio of
`POST /v1/sources` requests per second, measured in the same run on one `tdb serve`.

Both are writes that validate, take the store's write path and append an audit event in the
same transaction; the PATCH also reads the source and compares its version. Run with the
project's venv (wrk must be installed):

    .venv/bin/python bench/patch_bench.py --duration 5
    .venv/bin/python bench/patch_bench.py --store postgres --workers 2

The target: PATCH >= 0.8 x register. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from http_bench import (
    LUA_DONE,
    LUA_REGISTER,
    Postgres,
    register_body,
    register_many,
    run_wrk,
    secret_key,
    serving,
    tdb_server,
)

PATCH_RATIO_TARGET = 0.8
# Every request changes the source: a unique description per thread and request, over many
# sources so that concurrent PATCHes seldom meet on one (each would merge again on a conflict).
LUA_PATCH = r"""
wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/merge-patch+json"
local ids = {IDS}
local counter = 0

local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

request = function()
  counter = counter + 1
  local id = ids[(counter * 7 + (tid or 0) * 101) % #ids + 1]
  local body = string.format('{"description": "bench %d-%d"}', tid or 0, counter)
  return wrk.format("PATCH", "/v1/sources/" .. id, nil, body)
end
"""


def register_script(tmp: Path) -> Path:
    script = tmp / "register.lua"
    template = json.dumps(register_body("%s"))  # the name is the only `%s` in it
    script.write_text(
        LUA_REGISTER.replace("RUN_TOKEN", secrets.token_hex(4)).replace("BODY_TEMPLATE", template)
        + LUA_DONE
    )
    return script


def patch_script(tmp: Path, ids: list[str]) -> Path:
    script = tmp / "patch.lua"
    script.write_text(LUA_PATCH.replace("IDS", ", ".join(json.dumps(i) for i in ids)) + LUA_DONE)
    return script


def rate(out: dict[str, Any]) -> tuple[float, int, float, float]:
    """Requests per second, errors, p50 and p99 in milliseconds, of one wrk summary."""
    seconds = out["duration_us"] / 1e6
    errors = sum(int(out[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return out["requests"] / seconds, errors, out["p50_us"] / 1000, out["p99_us"] / 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sources", type=int, default=256, help="sources the PATCHes spread over")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    pg = Postgres(opts.pg_url)
    with tempfile.TemporaryDirectory(prefix="tdb-patch-bench-") as name:
        tmp = Path(name)
        if opts.store == "postgres":
            url, key = pg.store_url(), secret_key()
        else:
            url, key = f"sqlite:///{tmp / 'bench.sqlite3'}", None
        try:
            with serving(tdb_server(tmp, url, key, opts.workers)) as server:
                token = server.admin_token()
                assert token, server.log_tail()
                bodies = [
                    register_body(f"patched-{secrets.token_hex(4)}-{i}")
                    for i in range(opts.sources)
                ]
                ids = register_many(server.base_url, token, bodies, concurrency=8)
                runs = {
                    "register": (server.base_url + "/v1/sources", register_script(tmp)),
                    "patch": (server.base_url + "/", patch_script(tmp, ids)),
                }
                results: dict[str, list[tuple[float, int, float, float]]] = {}
                # Alternating, twice each: a drift of the machine during the run hits both.
                for round_ in range(2):
                    for scenario, (url_, script) in runs.items():
                        durations = [opts.duration]
                        if round_ == 0 and opts.warmup > 0:
                            durations.insert(0, opts.warmup)
                        for seconds in durations:
                            out = run_wrk(
                                url_,
                                script,
                                duration=seconds,
                                connections=opts.connections,
                                threads=1,
                                token=token,
                            )
                            server.settle()
                        results.setdefault(scenario, []).append(rate(out))
        finally:
            pg.drop_all()
    figures = {
        scenario: (
            sum(r[0] for r in runs_) / len(runs_),
            sum(r[1] for r in runs_),
            max(r[2] for r in runs_),
            max(r[3] for r in runs_),
        )
        for scenario, runs_ in results.items()
    }
    ratio = figures["patch"][0] / figures["register"][0]
    print(f"store={opts.store} workers={opts.workers} connections={opts.connections}")
    for scenario, (rps, errors, p50, p99) in figures.items():
        print(
            f"  {scenario:9} {rps:8.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
            f"  errors {errors}"
        )
    verdict = "meets" if ratio >= PATCH_RATIO_TARGET else "misses"
    print(f"  PATCH/register = {ratio:.2f} ({verdict} the {PATCH_RATIO_TARGET} target)")
    if opts.json:
        keys = ("rps", "errors", "p50_ms", "p99_ms")
        report = {
            "store": opts.store,
            "workers": opts.workers,
            "figures": {k: dict(zip(keys, v, strict=True)) for k, v in figures.items()},
            "ratio": ratio,
        }
        opts.json.write_text(json.dumps(report, indent=2))
    return 0 if all(v[1] == 0 for v in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
