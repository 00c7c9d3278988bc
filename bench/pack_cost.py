"""What packing Redis commands costs each batch handler, in process: `python -m bench.pack_cost`.

The naive and contract handlers (bench/apps) and the receiver are called in process, through
Flask's test client, with the benchmark's 500-record push, in turns, against a redis-server of
their own. Per record it prints the thread CPU of a whole push and of redis-py's
`Connection.pack_commands` within it, and what `hiredis.pack_command` alone takes for the same
commands. The naive and contract handlers pack every record's XADD through redis-py; the
receiver packs its one EVALSHA per push with `hiredis.pack_command` itself. So the batch
baselines move with redis-py's packer (bench/README.md, *How to read the table*): run this in
venvs that differ only in redis-py to see by how much. No HTTP and no gunicorn: the thread
clock of one process, steadier than the full benchmark's per-worker CPU.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import hiredis
import redis
import redis.connection

from . import payloads


class Packing:
    """Wraps redis-py's `Connection.pack_commands`: sums its thread CPU and keeps what it packed."""

    def __init__(self) -> None:
        self.original = redis.connection.Connection.pack_commands
        self.seconds = 0.0
        self.commands: list = []

    def __enter__(self) -> "Packing":
        original = self.original

        def timed(connection, commands):
            commands = list(commands)
            start = time.thread_time()
            packed = original(connection, commands)
            self.seconds += time.thread_time() - start
            self.commands.extend(commands)
            return packed

        redis.connection.Connection.pack_commands = timed
        return self

    def __exit__(self, *exc: object) -> None:
        redis.connection.Connection.pack_commands = self.original


def hiredis_seconds(commands: list, repeat: int = 5) -> float:
    """The least thread CPU `hiredis.pack_command` takes for these commands, of `repeat` tries."""
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        b"".join([hiredis.pack_command(tuple(command)) for command in commands])
        best = min(best, time.thread_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pack_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=500, help="records per push [500]")
    parser.add_argument("--pushes", type=int, default=100, help="pushes per handler and pass [100]")
    parser.add_argument("--passes", type=int, default=3, help="passes, in turns; medians shown [3]")
    args = parser.parse_args(argv)

    from receiver.redis_server import RedisServer
    payload = payloads.topen(args.records)
    with tempfile.TemporaryDirectory(prefix="bench-pack-cost-") as tmp, \
            RedisServer(Path(tmp) / "redis", persistent=False) as server:
        os.environ.update(BENCH_REDIS_URL=server.url, RECEIVER_REDIS_URL=server.url,
                          RECEIVER_DATA_DIR=f"{tmp}/data")
        from receiver import create_app
        logging.getLogger("receiver").setLevel(logging.WARNING)  # no line per push
        naive = importlib.import_module("bench.apps.naive")
        naive_push = naive.app.view_functions["push"]
        contract = importlib.import_module("bench.apps.contract")  # re-points naive's route
        handlers = {"naive": (naive.app, naive_push, payload.naive_entries),
                    "contract": (naive.app, contract.push, payload.naive_entries),
                    "receiver": (create_app(), None, payload.receiver_entries)}
        rows: dict[str, dict[str, list[float]]] = {
            name: {"push": [], "redis-py": [], "hiredis": [], "commands": []}
            for name in handlers}
        for run in range(args.passes):
            for name, (app, view, _) in handlers.items():
                if view is not None:
                    app.view_functions["push"] = view
                client = app.test_client()
                bodies = [payload.body(b"%s%02d-%06d-" % (name.encode(), run, n))
                          for n in range(args.pushes)]
                with Packing() as packing:
                    start = time.thread_time()
                    for body in bodies:
                        answer = client.post(payload.path, data=body,
                                             content_type=payload.content_type)
                        if answer.status_code != 200:
                            raise SystemExit(f"{name}: HTTP {answer.status_code}: "
                                             f"{answer.get_data(as_text=True)[:200]}")
                    spent = time.thread_time() - start
                records = args.pushes * args.records
                rows[name]["push"].append(spent * 1e6 / records)
                rows[name]["redis-py"].append(packing.seconds * 1e6 / records)
                rows[name]["hiredis"].append(hiredis_seconds(packing.commands) * 1e6 / records)
                rows[name]["commands"].append(len(packing.commands) / args.pushes)
        from receiver.store import Streams
        redis_client = redis.Redis(port=server.port)
        stored = sum(redis_client.xlen(key) for key in Streams().all)
    expected = args.passes * args.pushes * sum(entries for _, _, entries in handlers.values())
    print(f"redis-py {redis.__version__}, hiredis {hiredis.__version__}: thread CPU per record "
          f"of a {args.records}-record push, {args.pushes} pushes per handler, median of "
          f"{args.passes} passes in turns (entries stored: {stored} of "
          f"{expected}):\n")
    print("| handler | µs per record, whole push | commands per push through redis-py's "
          "packer | µs per record in redis-py's pack_commands | hiredis.pack_command alone, "
          "same commands | redis-py's ÷ hiredis' |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, figures in rows.items():
        push, commands = (statistics.median(figures[key]) for key in ("push", "commands"))
        if commands:
            packer, bare = (statistics.median(figures[key]) for key in ("redis-py", "hiredis"))
            cells = f"{packer:.1f} | {bare:.1f} | {packer / bare if bare else float('nan'):.1f}"
        else:  # the receiver: its one EVALSHA per push is packed by hiredis.pack_command
            cells = "– | – | –"
        print(f"| {name} | {push:.1f} | {commands:g} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
