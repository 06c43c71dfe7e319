"""The report of bench/http_bench.py: each pair of runs, the summary table, the targets."""

from __future__ import annotations

from typing import Any

from driver import Run
from scenarios import Scenario

# The targets this benchmark reports against.
LIST_10K_P50_TARGET_MS = 150.0
GET_RATIO_TARGET = 0.60


def fmt_errors(run: Run) -> str:
    return ",".join(f"{k}={v}" for k, v in run.errors.items()) or "0"


def print_pair(scenario: Scenario, tdb: Run, bare: Run) -> None:
    print(
        f"\n== {scenario.name}: {scenario.title}  [{tdb.connections} conn, "
        f"{tdb.workers} worker(s), store {tdb.store}]"
    )
    print(f"   {'':6} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}  errors")
    for run in (tdb, bare):
        print(
            f"   {run.target:6} {run.rps:10.1f} {run.p50_ms:9.2f} {run.p99_ms:9.2f}  "
            f"{fmt_errors(run)}"
        )
    print(f"   tdb/bare req/s: {ratio(tdb, bare):.1%}")
    for run in (tdb, bare):
        if too_few(run):
            print(
                f"   note: {run.target} completed {run.requests} requests on {run.connections} "
                "connections: its figures are not reliable, run longer (--duration)"
            )


def too_few(run: Run) -> bool:
    return run.requests < 2 * run.connections


def ratio(tdb: Run, bare: Run) -> float:
    return tdb.rps / bare.rps if bare.rps else 0.0


def print_summary(pairs: list[tuple[Run, Run]], matrix: bool) -> None:
    head = f"{'scenario':12} "
    if matrix:
        head += f"{'store':8} {'wrk':>3} "
    head += (
        f"{'tdb req/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'bare req/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} | {'tdb/bare':>8}"
    )
    print("\n" + head)
    print("-" * len(head))
    for tdb, bare in pairs:
        row = f"{tdb.scenario:12} "
        if matrix:
            row += f"{tdb.store:8} {tdb.workers:>3} "
        row += (
            f"{tdb.rps:10.1f} {tdb.p50_ms:8.2f} {tdb.p99_ms:8.2f} | {bare.rps:10.1f} "
            f"{bare.p50_ms:8.2f} {bare.p99_ms:8.2f} | {ratio(tdb, bare):8.1%}"
        )
        if too_few(tdb) or too_few(bare):
            row += "  (too few requests: see the note above)"
        if tdb.error_count or bare.error_count:
            row += f"  errors tdb {fmt_errors(tdb)} bare {fmt_errors(bare)}"
        print(row)


def check_targets(pairs: list[tuple[Run, Run]]) -> dict[str, Any]:
    by_name = {tdb.scenario: (tdb, bare) for tdb, bare in pairs}
    verdicts: dict[str, Any] = {}
    print()
    for name in ("list-10k-1c", "list-10k"):
        if name in by_name:
            tdb, _ = by_name[name]
            ok = tdb.p50_ms < LIST_10K_P50_TARGET_MS
            verdicts["list_10k_p50_ms"] = {
                "scenario": name,
                "value": tdb.p50_ms,
                "target": f"< {LIST_10K_P50_TARGET_MS}",
                "ok": ok,
            }
            print(
                f"target list-10k p50 < {LIST_10K_P50_TARGET_MS:.0f} ms ({name}, "
                f"{tdb.connections} conn): {tdb.p50_ms:.1f} ms  {'PASS' if ok else 'FAIL'}"
            )
            if name == "list-10k-1c" and "list-10k" in by_name:
                loaded = by_name["list-10k"][0]
                print(f"  (under load, {loaded.connections} conn: p50 {loaded.p50_ms:.1f} ms)")
            break
    if "get" in by_name:
        tdb, bare = by_name["get"]
        value = ratio(tdb, bare)
        ok = value >= GET_RATIO_TARGET
        verdicts["get_ratio"] = {"value": value, "target": f">= {GET_RATIO_TARGET}", "ok": ok}
        print(
            f"target GET by id >= {GET_RATIO_TARGET:.0%} of bare: {value:.1%}  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    return verdicts
