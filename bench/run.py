"""The benchmark: `python -m bench.run` (see bench/README.md for what it does and how to read it).

One run starts a redis-server and, under gunicorn with the same worker settings, a bare WSGI
app (hello), a hand-written Flask receiver (naive) and the receiver; loads each with wrk; and
writes a table of medians, the target ratios and a scaling plot to bench/results/.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import platform
import statistics
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import redis

from receiver import gunicorn_conf

from . import loadgen, payloads, report
from .payloads import Payload
from .procs import Gunicorn, Watch, cpu_seconds, cpu_set, rss_mb

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 500
BATCH_SIZES = (1, 10, 100, BATCH)
WORKER_COUNTS = (1, 2, 4)
FIXED_RATE = 50.0


@dataclass(frozen=True)
class Scenario:
    """One load: a payload sent by wrk to one server."""

    name: str
    server: str          # "hello", "floor", "naive", "contract" or "receiver"
    payload: Payload
    workers: int
    group: str = "main"  # "main", "batch" (scaling by batch size) or "workers"

    @property
    def entries(self) -> int:
        """Stream entries one push must add (0 for hello, which stores nothing)."""
        return {"hello": 0, "floor": 1, "naive": self.payload.naive_entries,
                "contract": self.payload.naive_entries,  # it XADDs duplicates too
                "receiver": self.payload.receiver_entries}[self.server]


@dataclass
class Measurement:
    """One scenario, one run."""

    requests_per_s: float
    records_per_s: float   # stream entries actually added per second (XLEN deltas)
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float
    cpu_us_per_record: float
    redis_cpu_us_per_record: float
    stored_ratio: float    # entries added / (2xx responses x entries per push); 1.0 is exact
    requests: int
    errors: int
    stored: int


@dataclass
class Row:
    """A scenario's medians over the runs."""

    name: str
    server: str
    group: str
    workers: int
    records_per_push: int
    runs: list[Measurement] = field(default_factory=list)

    def median(self, name: str) -> float:
        values = [getattr(run, name) for run in self.runs]
        return statistics.median(values) if values else float("nan")

    def peak(self, name: str) -> float:
        return max((getattr(run, name) for run in self.runs), default=float("nan"))


def scenarios(workers: int, sizes: tuple[int, ...] = BATCH_SIZES,
              counts: tuple[int, ...] = WORKER_COUNTS) -> list[Scenario]:
    """The main table, then the scaling curves (sizes other than 1 and BATCH, counts other
    than `workers`: those points are in the main table)."""
    batch, single = payloads.topen(BATCH), payloads.topen(1)
    hello = Payload("/healthz", "text/plain", ((b"",),), 0, 0, 0)
    out = [
        Scenario("hello", "hello", hello, workers),
        Scenario("floor single", "floor", single, workers),
        Scenario("naive single", "naive", single, workers),
        Scenario("naive batch", "naive", batch, workers),
        Scenario("contract batch", "contract", batch, workers),
        Scenario("receiver single", "receiver", single, workers),
        Scenario("receiver batch", "receiver", batch, workers),
        Scenario("smsadmin single", "receiver", payloads.smsadmin(), workers),
        Scenario("returnsms single", "receiver", payloads.returnsms(1), workers),
        Scenario("returnsms batch", "receiver", payloads.returnsms(BATCH), workers),
    ]
    for size in sizes:
        if size not in (1, BATCH):
            for server in ("naive", "receiver"):
                out.append(Scenario(f"{server} batch {size}", server, payloads.topen(size),
                                    workers, "batch"))
    for count in counts:
        if count != workers:
            for server in ("naive", "receiver"):
                out.append(Scenario(f"{server} batch, {count} workers", server, batch, count,
                                    "workers"))
    return out


def stream_total(client: redis.Redis) -> int:
    pipe = client.pipeline(transaction=False)
    for stream in ("sms:dlr", "sms:mo", "sms:deadletter"):
        pipe.xlen(stream)
    return sum(pipe.execute())


def measure(scenario: Scenario, server: Gunicorn, client: redis.Redis, redis_pid: int,
            args: argparse.Namespace, workdir: Path) -> Measurement:
    """One wrk run of a scenario against an empty Redis."""
    client.flushall()
    redis_cpu = cpu_seconds(redis_pid)
    with Watch(server.worker_pids()) as watch:
        load = loadgen.run_wrk(args.wrk, server.url, scenario.payload, seconds=args.duration,
                               connections=args.connections or 4 * scenario.workers,
                               workdir=workdir,
                               cpus=args.client_cpus)
    time.sleep(0.2)  # let the last in-flight pushes land before counting
    redis_cpu = cpu_seconds(redis_pid) - redis_cpu
    stored = stream_total(client)
    ok = load.requests - load.errors
    expected = ok * scenario.entries
    # Entries of the completed pushes, as far as the streams hold them: a push still in flight
    # when wrk stopped may add entries no response counted; a lost entry lowers the rate.
    records = min(stored, expected)
    return Measurement(
        requests_per_s=load.requests / load.seconds,
        records_per_s=records / load.seconds,
        p50_ms=load.p50_ms, p99_ms=load.p99_ms, peak_rss_mb=watch.peak_rss_mb,
        cpu_us_per_record=watch.cpu / records * 1e6 if records else watch.cpu / max(1, load.requests) * 1e6,
        redis_cpu_us_per_record=redis_cpu / records * 1e6 if records else 0.0,
        stored_ratio=stored / expected if expected else float("nan"),
        requests=load.requests, errors=load.errors, stored=stored)


# --- the Redis ceiling: the receiver's own Publisher, no HTTP --------------------------------

def fresh(entry: tuple, suffix: str) -> tuple:
    """The entry with a new dedupe id (and event id): a new push's record, not a duplicate."""
    kind, dedupe, fields = entry
    renamed = dedupe[:-len(suffix)] + suffix
    return kind, renamed, ({**fields, "id": renamed} if "id" in fields else fields)


def decoded_entries(app, payload: Payload, prefix: bytes) -> list[tuple]:
    """One push of the payload as the receiver's own view decodes it: its stream entries."""
    from receiver import events, views
    from receiver.vendors import Push
    from werkzeug.test import EnvironBuilder

    vendor = payload.path.rsplit("/", 1)[1]
    body = payload.body(prefix)
    request = views.PushRequest(EnvironBuilder(payload.path, method="POST", data=body,
                                               content_type=payload.content_type
                                               ).get_environ())
    return views._entries(vendor, Push("POST", b"", body, payload.content_type),
                          app.config["RECEIVER"].vendors[vendor], events.now(), request)


def _ceiling_worker(env: dict[str, str], payload: Payload, seconds: float, index: int,
                    ready, queue, cpus: str | None = None) -> None:
    try:
        if cpus:  # where the gunicorn workers run
            os.sched_setaffinity(0, cpu_set(cpus))
        os.environ.update(env)
        from receiver import create_app

        app = create_app()
        # The receiver's own decoding, done once, outside the clock.
        entries = decoded_entries(app, payload, b"c%dr" % index)
        publish = app.extensions["receiver.publisher"].publish  # the receiver's own script
    except BaseException as problem:
        queue.put(f"ceiling client {index} failed: {problem!r}")
        raise
    latencies, calls = [], 0
    ready.wait()  # every client starts together, after its imports
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        # Fresh ids per call (duplicates within the push stay duplicates), as a new push has.
        suffix = f"{index:02x}{calls:06x}"
        batch = [fresh(entry, suffix) for entry in entries]
        start = time.perf_counter()
        publish(batch)
        latencies.append((time.perf_counter() - start) * 1000)
        calls += 1
    queue.put((calls, latencies))


def measure_ceiling(env: dict[str, str], client: redis.Redis, redis_pid: int, payload: Payload,
                    processes: int, seconds: float, cpus: str | None = None) -> Measurement:
    """`processes` Python clients publishing the batch's entries as fast as Redis takes them,
    through the receiver's own Publisher: the Redis-side limit, no HTTP, no decoding."""
    client.flushall()
    context = multiprocessing.get_context("spawn")
    queue, ready = context.Queue(), context.Barrier(processes + 1, timeout=120)
    workers = [context.Process(target=_ceiling_worker,
                               args=(env, payload, seconds, i, ready, queue, cpus), daemon=True)
               for i in range(processes)]
    for worker in workers:
        worker.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        raise RuntimeError(queue.get(timeout=5) if not queue.empty()
                           else "ceiling clients did not start") from None
    redis_cpu = cpu_seconds(redis_pid)
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for worker in workers:
        worker.join(10)
    failed = [r for r in results if isinstance(r, str)]
    if failed:
        raise RuntimeError("; ".join(failed))
    redis_cpu = cpu_seconds(redis_pid) - redis_cpu
    calls = sum(c for c, _ in results)
    latencies = [l for _, ls in results for l in ls]
    stored = stream_total(client)
    expected = calls * payload.receiver_entries
    return Measurement(
        requests_per_s=calls / seconds, records_per_s=min(stored, expected) / seconds,
        p50_ms=loadgen.percentile(latencies, 50), p99_ms=loadgen.percentile(latencies, 99),
        peak_rss_mb=float("nan"), cpu_us_per_record=float("nan"),
        redis_cpu_us_per_record=redis_cpu / stored * 1e6 if stored else 0.0,
        stored_ratio=stored / expected if expected else float("nan"),
        requests=calls, errors=0, stored=stored)


def measure_fixed_rate(server: Gunicorn, client: redis.Redis, payload: Payload, entries: int,
                       args: argparse.Namespace) -> Measurement:
    """Open-loop pushes at FIXED_RATE per second; latency from each scheduled send time."""
    client.flushall()
    affinity = os.sched_getaffinity(0)
    if args.client_cpus:  # the open-loop client runs in this process: pin it like wrk
        os.sched_setaffinity(0, cpu_set(args.client_cpus))
    try:
        with Watch(server.worker_pids()) as watch:
            load = loadgen.run_fixed_rate("127.0.0.1", server.port, payload, rate=args.rate,
                                          seconds=args.fixed_seconds)
    finally:
        os.sched_setaffinity(0, affinity)
    time.sleep(0.2)
    stored = stream_total(client)
    expected = (load.requests - load.errors) * entries
    return Measurement(
        requests_per_s=load.requests / load.seconds,
        records_per_s=min(stored, expected) / load.seconds,
        p50_ms=load.p50_ms, p99_ms=load.p99_ms, peak_rss_mb=watch.peak_rss_mb,
        cpu_us_per_record=watch.cpu / stored * 1e6 if stored else float("nan"),
        redis_cpu_us_per_record=float("nan"),
        stored_ratio=stored / expected if expected else float("nan"),
        requests=load.requests, errors=load.errors, stored=stored)


# --- the machine ---------------------------------------------------------------------------

def _command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def machine(args: argparse.Namespace, redis_binary: str) -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = "?"
    try:
        kb = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version
    return {
        "host": platform.node(), "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu, "cpus": str(os.cpu_count()), "memory": memory,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "gunicorn": version("gunicorn"), "flask": version("flask"), "redis-py": version("redis"),
        "hiredis": _safe_version("hiredis"),
        "redis-server": f"{redis_binary} ({_command_output([redis_binary, '--version'])})",
        "wrk": _command_output([args.wrk, "--version"]),
        "pinning": (f"servers on cpus {args.server_cpus}, load generator on cpus "
                    f"{args.client_cpus}" if args.server_cpus else "none (all processes float)"),
    }


def _safe_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


# --- the command ---------------------------------------------------------------------------

def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need whole numbers >= 1: {text!r}")
    return values


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario; the table shows "
                        "medians [3]")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run [10]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers [2]")
    parser.add_argument("--worker-class", default=gunicorn_conf.worker_class,
                        help=f"gunicorn worker class, for every app [{gunicorn_conf.worker_class}: "
                        "the receiver's default]")
    parser.add_argument("--threads", type=int, default=gunicorn_conf.threads,
                        help=f"threads per worker (gthread) [{gunicorn_conf.threads}]")
    parser.add_argument("--only", default=None,
                        help="run only the scenarios whose name matches this regex")
    parser.add_argument("--connections", type=int, default=None,
                        help="wrk connections [4 x the scenario's workers: enough for the "
                             "kernel to spread them over the per-worker sockets]")
    parser.add_argument("--rate", type=float, default=FIXED_RATE,
                        help=f"pushes/s of the fixed-rate latency test [{FIXED_RATE:g}]")
    parser.add_argument("--fixed-seconds", type=float, default=None,
                        help="seconds of the fixed-rate test [--duration]")
    parser.add_argument("--pin", choices=("auto", "none"), default="auto",
                        help="taskset layout: auto puts the load generator on the last cpu and "
                        "the servers on the others when there are at least 3 cpus [auto]")
    parser.add_argument("--server-cpus", help="taskset cpu list for gunicorn (overrides --pin)")
    parser.add_argument("--client-cpus", help="taskset cpu list for wrk (overrides --pin)")
    parser.add_argument("--no-scaling", action="store_true",
                        help="skip the batch-size and worker-count curves")
    parser.add_argument("--batch-sizes", type=_ints, default=BATCH_SIZES,
                        help="records per push of the batch-size curve [1,10,100,500]")
    parser.add_argument("--worker-counts", type=_ints, default=WORKER_COUNTS,
                        help="gunicorn workers of the worker-count curve [1,2,4]")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (gunicorn and Redis logs, wrk scripts)")
    parser.add_argument("--quick", action="store_true",
                        help="1 run of 1 s per scenario: checks the harness, measures nothing")
    parser.add_argument("--wrk", help="path of wrk [found on PATH]")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder [bench/results]")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.duration = 1, 1
        args.fixed_seconds = args.fixed_seconds or 1.0
    args.fixed_seconds = args.fixed_seconds or float(args.duration)
    cpus = os.cpu_count() or 1
    if args.pin == "auto" and cpus >= 3 and not (args.server_cpus or args.client_cpus):
        args.server_cpus, args.client_cpus = f"0-{cpus - 2}", str(cpus - 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        args.wrk = loadgen.find_wrk(args.wrk)
        report.check_plotting()
    except (loadgen.GeneratorMissing, report.PlotMissing) as problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    from receiver.redis_server import RedisServer, find_binary

    plan = [s for s in scenarios(args.workers, args.batch_sizes, args.worker_counts)
            if not (args.no_scaling and s.group != "main")
            and (args.only is None or re.search(args.only, s.name))]
    rows = {s.name: Row(s.name, s.server, s.group, s.workers, s.payload.records) for s in plan}
    ceiling = Row("redis ceiling (Publisher, no HTTP)", "python", "main", args.workers, BATCH)
    fixed = Row(f"receiver batch at {args.rate:g} pushes/s", "receiver", "main", args.workers, BATCH)
    naive_fixed = Row(f"naive batch at {args.rate:g} pushes/s", "naive", "main", args.workers,
                      BATCH)
    started = datetime.now(timezone.utc)
    receiver_rss_after = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        redis_binary = find_binary()
        info = machine(args, redis_binary)
        print(f"bench: {len(plan)} scenarios x {args.runs} runs x {args.duration}s; "
              f"logs in {workdir}", file=sys.stderr)
        load = os.getloadavg()[0]
        if load > 0.5 * (os.cpu_count() or 1):
            print(f"bench: warning: load average {load:.2f} before the start; other work on "
                  "this machine makes the numbers noisy", file=sys.stderr)
        # Redis without persistence (nothing on disk to wait for), on the servers' cpus.
        with RedisServer(workdir / "redis", persistent=False, binary=redis_binary) as server:
            if args.server_cpus:
                os.sched_setaffinity(server.process.pid, cpu_set(args.server_cpus))
            client = redis.Redis(port=server.port)
            # The receiver with its default settings, its files (spool) under the temp folder.
            env = {"BENCH_REDIS_URL": server.url, "RECEIVER_REDIS_URL": server.url,
                   "RECEIVER_DATA_DIR": str(workdir / "receiver-data")}
            apps = {"hello": "bench.apps.hello:app", "floor": "bench.apps.floor:app",
                    "naive": "bench.apps.naive:app", "contract": "bench.apps.contract:app",
                    "receiver": "wsgi:app"}
            servers: dict[tuple[str, int], Gunicorn] = {}
            try:
                for s in plan:
                    key = (s.server, s.workers)
                    if key not in servers:
                        servers[key] = Gunicorn(apps[s.server], workers=s.workers, env=env,
                                                logdir=workdir, cpus=args.server_cpus,
                                                name=f"{s.server}",
                                                worker_class=args.worker_class,
                                                threads=args.threads).start()
                for run in range(args.runs):
                    for s in plan:
                        m = measure(s, servers[(s.server, s.workers)], client,
                                    server.process.pid, args, workdir)
                        rows[s.name].runs.append(m)
                        print(f"  run {run + 1}/{args.runs} {s.name:32s} {m.requests_per_s:9.0f} "
                              f"req/s {m.records_per_s:9.0f} rec/s p99 {m.p99_ms:7.1f} ms "
                              f"stored {m.stored_ratio:.3f}", file=sys.stderr)
                    m = measure_ceiling(env, client, server.process.pid,
                                        payloads.topen(BATCH), args.workers, args.duration,
                                        args.server_cpus)
                    ceiling.runs.append(m)
                    print(f"  run {run + 1}/{args.runs} {'redis ceiling':32s} {m.requests_per_s:9.0f} "
                          f"calls/s {m.records_per_s:9.0f} rec/s", file=sys.stderr)
                    for row, name in ((fixed, "receiver"), (naive_fixed, "naive")):
                        if (name, args.workers) not in servers:
                            continue  # not in this run's --only selection
                        payload = payloads.topen(BATCH)
                        entries = (payload.receiver_entries if name == "receiver"
                                   else payload.naive_entries)
                        m = measure_fixed_rate(servers[(name, args.workers)], client, payload,
                                               entries, args)
                        row.runs.append(m)
                        print(f"  run {run + 1}/{args.runs} {row.name:32s} p50 {m.p50_ms:.1f} ms "
                              f"p99 {m.p99_ms:.1f} ms errors {m.errors}", file=sys.stderr)
                main_receiver = servers.get(("receiver", args.workers))
                receiver_rss_after = {} if main_receiver is None else {
                    "workers": args.workers,
                    "records": sum(m.stored for r in rows.values() if r.server == "receiver"
                                   and r.workers == args.workers for m in r.runs)
                               + sum(m.stored for m in fixed.runs),
                    "rss_mb": max(rss_mb(p) for p in main_receiver.worker_pids()),
                }
            finally:
                for gunicorn in servers.values():
                    gunicorn.stop()
    finally:
        if args.keep:
            print(f"bench: logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finished = datetime.now(timezone.utc)
    result = report.Result(
        command=" ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        started=started.isoformat(timespec="seconds"),
        seconds=round((finished - started).total_seconds()), machine=info, args=vars(args),
        rows=list(rows.values()), ceiling=ceiling, fixed=fixed, naive_fixed=naive_fixed,
        rss_after=receiver_rss_after, batch=BATCH)
    paths = report.write(result, args.out, stamp=started.strftime("%Y%m%d-%H%M%S"),
                         latest=not args.quick)
    print(report.markdown(result))
    print("written: " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
