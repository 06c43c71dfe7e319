"""API-key requests while the OIDC issuer is down or slow: the bar is their p50 unchanged within
10 %.

One `tdb serve` trusts an issuer on loopback (`tests/oidc_issuer`). Each round runs three phases
of `--seconds` each, in turn, so that the machine's load hits them alike:

- `healthy`: the issuer answers;
- `silent`: the issuer accepts connections and never answers (every JWKS fetch waits out its
  timeout);
- `down`: the issuer answers 503 to everything.

In every phase `--jwt-clients` clients send OIDC tokens whose `kid` the server does not hold, so
that it fetches the JWKS as often as it may (once per 10 s): the phases differ only in the
issuer's health.

`--clients` API-key clients loop over `GET /v1/sources` throughout; the figure is their p50 in
each phase, and its ratio to the same round's `healthy` phase (the median over rounds).

    .venv/bin/python bench/issuer_outage_bench.py
    .venv/bin/python bench/issuer_outage_bench.py --rounds 3 --seconds 8 --clients 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
from pathlib import Path

from key_load import load, make_keys, p50_ms, served

from tests.oidc_issuer import AUDIENCE, Issuer, new_key, running_issuer

PHASES = ("healthy", "silent", "down")


async def _phase(
    args: argparse.Namespace, url: str, keys: list[str], jwts: list[str]
) -> tuple[float, float, int]:
    fresh = itertools.cycle(jwts)
    key_load = load(url, lambda i: keys[i % len(keys)], args.clients, args.seconds)
    (_, latencies, failures), (_, jwt_latencies, _) = await asyncio.gather(
        key_load, load(url, lambda i: next(fresh), args.jwt_clients, args.seconds)
    )
    return p50_ms(latencies), p50_ms(jwt_latencies), failures


async def _run(args: argparse.Namespace, issuer: Issuer, url: str, keys: list[str]) -> None:
    signer = new_key("RSA")
    # Tokens naming kids the issuer never published: each may make the server fetch again.
    jwts = [issuer.token(f"kid-{n}", key=signer) for n in range(64)]
    figures: dict[str, list[float]] = {phase: [] for phase in PHASES}
    jwt_figures: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for round_ in range(args.rounds):
        for phase in PHASES:
            issuer.mode = "up" if phase == "healthy" else phase
            p50, jwt_p50, failures = await _phase(args, url, keys, jwts)
            figures[phase].append(p50)
            jwt_figures[phase].append(jwt_p50)
            print(f"round {round_ + 1} {phase:<8} API-key p50 {p50:7.2f} ms"
                  f"  OIDC p50 {jwt_p50:8.2f} ms  key non-200: {failures}")  # fmt: skip
        issuer.mode = "up"
    # Each round's phases ran back to back: their ratio to that round's healthy phase cancels
    # most of the machine's swings between rounds; the figure is the median of those ratios.
    ratios = {
        phase: statistics.median(
            p / h for p, h in zip(figures[phase], figures["healthy"], strict=True)
        )
        for phase in PHASES
    }
    for phase in PHASES:
        p50 = statistics.median(figures[phase])
        print(f"{phase:<8} API-key p50 {p50:7.2f} ms (median of rounds)"
              f"  ratio to healthy, median of rounds {ratios[phase]:.3f}")  # fmt: skip
    worst = max(ratios["silent"], ratios["down"])
    verdict = "met" if worst <= 1.10 else "MISSED"
    print(f"bar: API-key p50 with the issuer down or silent <= 1.10 x healthy -> {worst:.3f}"
          f" ({verdict})")  # fmt: skip
    print(f"JWKS requests the issuer received: {len(issuer.requests)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jwt-clients", type=int, default=4)
    args = parser.parse_args()
    with running_issuer() as issuer, tempfile.TemporaryDirectory() as tmp:
        issuer.add_key("k1", "RSA")
        workdir = Path(tmp)
        env = {
            "TDB_DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "TDB_OIDC_ISSUER": issuer.url,
            "TDB_OIDC_AUDIENCE": AUDIENCE,
            "TDB_CONNECT_TIMEOUT": "2",
        }
        with served(workdir, env) as server:
            keys = make_keys(workdir, env, 4)
            asyncio.run(_run(args, issuer, f"{server.url}/v1/sources", keys))


if __name__ == "__main__":
    main()
