"""What a 500-record push costs Redis, piece by piece: `python -m bench.redis_cost --help`.

Against a redis-server of its own, the receiver's entries for the benchmark's batch (decoded
once by the receiver itself) are written in several ways, one after the other from one
client, and redis-server's CPU time is read from /proc around each: the receiver's publish
script, the same script without its dedupe claims, and native pipelined commands (the naive
handler's 3-field XADD, the receiver's full XADD, the dedupe sets' commands, and the
key-per-id `SET NX PX` claim the script used before). Each pass uses fresh
ids, so nothing is a duplicate but the in-push ones. The figures are µs of Redis CPU per
entry: ratios between the lines of one run are what to read; the clock tick is 10 ms, so use
enough pushes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import redis

from . import payloads
from .procs import cpu_seconds
from .run import decoded_entries, fresh

Entry = tuple[str, str, dict]


def ways(client: redis.Redis, publisher) -> dict[str, Callable[[list[Entry]], object]]:
    """name -> a function writing one push's entries that way."""
    from receiver.store import Publisher
    # A zero window: no dedupe sets to check or claim in.
    unclaimed = Publisher(client, publisher.streams, dedupe_ttl=0, retention=None)

    def claims(entries: list[Entry]) -> object:
        """The script's dedupe work as native commands: check the sets, claim in one."""
        checks, [claim], [expiry], _ = publisher._sets(int(time.time() * 1000))
        ids = [dedupe for _, dedupe, _ in entries]
        pipe = client.pipeline(transaction=False)
        for key in checks:
            pipe.smismember(key, ids)
        pipe.sadd(claim, *ids)
        pipe.pexpireat(claim, expiry)
        return pipe.execute()

    def pipelined(command: Callable) -> Callable[[list[Entry]], object]:
        def write(entries: list[Entry]) -> object:
            pipe = client.pipeline(transaction=False)
            for entry in entries:
                command(pipe, *entry)
            return pipe.execute()
        return write

    ttl = publisher.dedupe_ms
    return {
        "receiver script (claim + XADD per entry)": publisher.publish,
        "receiver script without the claims": unclaimed.publish,
        "pipelined XADD, the receiver's fields": pipelined(
            lambda pipe, kind, _, fields: pipe.xadd(f"sms:{kind}", fields)),
        "pipelined XADD, naive's 3 fields": pipelined(
            lambda pipe, kind, dedupe, fields: pipe.xadd(f"sms:{kind}", {
                "batch_id": fields.get("batch_id", ""), "mobile": fields.get("mobile", ""),
                "status": fields.get("vendor_status", "")})),
        "native dedupe (3 SMISMEMBER + SADD + PEXPIREAT per push)": claims,
        "pipelined SET NX PX (a key per id, the old claim)": pipelined(
            lambda pipe, kind, dedupe, fields: pipe.set(f"sms:seen:{dedupe}", 1, nx=True,
                                                        px=ttl)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=500, help="records per push [500]")
    parser.add_argument("--pushes", type=int, default=100, help="pushes per way and pass [100]")
    parser.add_argument("--passes", type=int, default=3, help="passes; medians shown [3]")
    parser.add_argument("--bad", action="store_true",
                        help="every record without a usable mobile: a dead letter per record, "
                             "each holding the push's body")
    args = parser.parse_args(argv)

    from receiver.redis_server import RedisServer
    with tempfile.TemporaryDirectory(prefix="bench-redis-cost-") as tmp, \
            RedisServer(Path(tmp) / "redis", persistent=False) as server:
        os.environ.update(RECEIVER_REDIS_URL=server.url, RECEIVER_DATA_DIR=f"{tmp}/data",
                          RECEIVER_ARCHIVE="off")
        from receiver import create_app
        app = create_app()
        payload = (payloads.topen_bad if args.bad else payloads.topen)(args.records)
        entries = decoded_entries(app, payload, b"cost")
        client = redis.Redis(port=server.port)
        table = ways(client, app.extensions["receiver.publisher"])
        costs: dict[str, list[float]] = {name: [] for name in table}
        for run in range(args.passes):
            for number, (name, write) in enumerate(table.items()):
                client.flushall()
                pushes = [[fresh(entry, f"{run:02x}{number:02x}{n:06x}") for entry in entries]
                          for n in range(args.pushes)]
                before = cpu_seconds(server.process.pid)
                for push in pushes:
                    write(push)
                spent = cpu_seconds(server.process.pid) - before
                costs[name].append(spent * 1e6 / (args.pushes * len(entries)))
    fields = len(entries[0][2])
    letters = sum(kind == "deadletter" for kind, _, _ in entries)
    print(f"Redis CPU per entry, {len(entries)} entries per push ({letters} dead letters; "
          f"{fields} fields in the first), {args.pushes} pushes per way, median of "
          f"{args.passes} passes:\n")
    print("| way | µs per entry | × naive's XADD |\n|---|--:|--:|")
    base = statistics.median(costs["pipelined XADD, naive's 3 fields"]) or float("nan")
    for name, values in costs.items():
        middle = statistics.median(values)
        print(f"| {name} | {middle:.2f} | {middle / base:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
