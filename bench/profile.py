"""Where a push's time goes: cProfile of the receiver posting one payload in a loop through
`app.test_client()`, against a redis-server of its own. `python -m bench.profile --help`."""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from . import payloads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--payload", default="topen", choices=("topen", "returnsms", "smsadmin"))
    parser.add_argument("--records", type=int, default=500, help="records per push [500]")
    parser.add_argument("--pushes", type=int, default=200, help="pushes to profile [200]")
    parser.add_argument("--top", type=int, default=30, help="functions to list [30]")
    parser.add_argument("--sort", default="tottime", help="pstats sort key [tottime]")
    args = parser.parse_args(argv)
    payload = {"topen": lambda: payloads.topen(args.records),
               "returnsms": lambda: payloads.returnsms(args.records),
               "smsadmin": payloads.smsadmin}[args.payload]()

    from receiver.redis_server import RedisServer
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp, \
            RedisServer(Path(tmp) / "redis", persistent=False) as server:
        os.environ.update(RECEIVER_REDIS_URL=server.url, RECEIVER_DATA_DIR=f"{tmp}/data")
        from receiver import create_app
        # The receiver logs a line per push: keep that cost, send the lines nowhere.
        sink = logging.StreamHandler(open(os.devnull, "w"))
        sink.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("receiver").addHandler(sink)
        logging.getLogger("receiver").setLevel(logging.INFO)
        app = create_app()
        client = app.test_client()

        def push(index: int) -> None:
            response = client.post(payload.path, data=payload.body(b"p%dr" % index, index),
                                   content_type=payload.content_type)
            assert response.status_code == 200, response.data

        for index in range(10):  # warm caches and the script
            push(index)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for index in range(10, 10 + args.pushes):
            push(index)
        profiler.disable()
        elapsed = time.perf_counter() - start
    records = args.pushes * payload.records
    print(f"{args.pushes} pushes of {payload.records} {args.payload} records in {elapsed:.2f} s "
          f"under cProfile: {elapsed / args.pushes * 1000:.2f} ms/push, "
          f"{elapsed / records * 1e6:.1f} µs/record (profiling adds overhead)")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats(args.sort).print_stats(args.top)
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
