"""``python -m bench [relay|litellm|storage|startup|local|web|resume|reconnect|budgets ...]
[--quick]``.

Runs the named benchmarks (all by default, in that order), prints one table
each, and writes every table with its raw numbers to bench/results/*.json.
A benchmark that crashes prints its error as a table; the others still run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

from bench.common import Table, save

NAMES = (
    "relay",
    "litellm",
    "storage",
    "startup",
    "local",
    "starter",
    "web",
    "resume",
    "scoped_search",
    "responses",
    "speech",
    "images",
    "routing",
    "reconnect",
    "assistants",
    "jobs",
    "storage_s3",
    "budgets",
)


def _runner(name: str) -> Callable[[bool], Table]:
    if name == "relay":
        from bench import relay

        return relay.run
    if name == "litellm":
        from bench import peer

        return peer.run
    if name == "storage":
        from bench import storage

        return storage.run
    if name == "startup":
        from bench import startup

        return startup.run
    if name == "starter":
        from bench import starter

        return starter.run
    if name == "web":
        from bench import web_perf

        return web_perf.run
    if name == "images":
        from bench import images

        return images.run
    if name == "resume":
        from bench import resume

        return resume.run
    if name == "responses":
        from bench import responses

        return responses.run
    if name == "speech":
        from bench import speech

        return speech.run
    if name == "routing":
        from bench import routing

        return routing.run
    if name == "reconnect":
        from bench import reconnect

        return reconnect.run
    if name == "assistants":
        from bench import assistants

        return assistants.run
    if name == "jobs":
        from bench import jobs

        return jobs.run
    if name == "storage_s3":
        from bench import storage_s3

        return storage_s3.run
    if name == "budgets":
        from bench import budgets

        return budgets.run
    if name == "scoped_search":
        from bench import scoped_search

        return scoped_search.run
    from bench import local

    return local.run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="smaller, faster versions")
    args = parser.parse_args(argv)
    names = args.names or list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    tables: list[Table] = []
    failed = False
    for name in names:
        print(f"[bench] {name}{' (quick)' if args.quick else ''}...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            table = _runner(name)(args.quick)
        except Exception as exc:
            table = Table(name, f"{name}: crashed")
            table.add("benchmark ran", "no", "-", "yes", False)
            table.notes.append(f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
        table.raw["seconds"] = round(time.perf_counter() - start, 1)
        table.notes.append(f"took {table.raw['seconds']:.0f} s")
        tables.append(table)
        failed = failed or any(row.ok is False for row in table.rows)
        print(table.render() + "\n", flush=True)
    path = save(tables, args.quick)
    verdicts = [r.ok for t in tables for r in t.rows if r.ok is not None]
    print(f"{verdicts.count(True)} targets met, {verdicts.count(False)} missed; results: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
