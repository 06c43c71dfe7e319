"""MySQL schema benchmark: inspections through the pool against a fresh connection each.

Creates a throwaway database and table on the server of TDB_TEST_MYSQL_URL (default
mysql://root@127.0.0.1:3306/test), then inspects it `--runs` times one after another with the
connector's pool (connections kept, reused) and `--runs` times with pooling off (idle timeout 0:
a new connection, handshake and login for every inspection), interleaved in rounds so that both
see the same load; reports each one's median and the ratio. Target: pooled >= 10x faster.

    .venv/bin/python bench/mysql_pool_bench.py --runs 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import pymysql

from adapters.connectors.mysql import MysqlConnector, mysql_pools

TARGET_RATIO = 10.0


def admin() -> dict[str, Any]:
    parts = urlsplit(os.environ.get("TDB_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }


async def timed(connector: MysqlConnector, connection: dict[str, Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await connector.inspect(connection)
        times.append(time.perf_counter() - started)
    return times


def query_floor(connection: dict[str, Any], runs: int) -> float:
    """The median time of the catalog query alone, on one open connection, no thread: what
    the server takes, which no pool can save."""
    from adapters.connectors.mysql import COLUMNS

    where = {k: connection[k] for k in ("host", "port", "user", "password")}
    with pymysql.connect(**where, database=connection["dbname"], ssl_disabled=True) as conn:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            with conn.cursor() as cursor:
                cursor.execute(COLUMNS, (connection["dbname"], connection["table"]))
                cursor.fetchall()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(connection: dict[str, Any], runs: int, rounds: int) -> tuple[list[float], ...]:
    pooled = MysqlConnector(pools=mysql_pools())
    fresh = MysqlConnector(pools=mysql_pools(idle_timeout=0))
    await pooled.inspect(connection)  # warm: threads, imports, the first connection
    await fresh.inspect(connection)
    pooled_times: list[float] = []
    fresh_times: list[float] = []
    for _ in range(rounds):
        pooled_times += await timed(pooled, connection, runs // rounds)
        fresh_times += await timed(fresh, connection, runs // rounds)
    return pooled_times, fresh_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="inspections of each kind (300)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (10)")
    args = parser.parse_args()
    where = admin()
    name = f"tdb_bench_{secrets.token_hex(4)}"
    with pymysql.connect(**where, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(
            f"CREATE TABLE `{name}`.orders (id int NOT NULL, customer varchar(80),"
            " total decimal(12,2), status enum('open','paid'), at datetime, doc json)"
        )
    try:
        connection = {**where, "dbname": name, "table": "orders", "ssl_mode": "preferred"}
        pooled, fresh = asyncio.run(measure(connection, args.runs, args.rounds))
        floor = query_floor(connection, args.runs)
    finally:
        with pymysql.connect(**where, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{name}`")
    p, f = statistics.median(pooled), statistics.median(fresh)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"pooled: median {p * 1000:.2f} ms over {len(pooled)} inspections")
    print(f"fresh connection each: median {f * 1000:.2f} ms over {len(fresh)} inspections")
    print(f"the catalog query alone (the server's time, no pool, no thread): {floor * 1000:.2f} ms")
    ratio = f / p
    print(f"pooled is {ratio:.1f}x faster (target >= {TARGET_RATIO:g}x)")
    print("target met" if ratio >= TARGET_RATIO else "TARGET MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
