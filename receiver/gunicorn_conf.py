"""gunicorn defaults for the receiver (`receiver serve` and deploy/gunicorn.conf.py use these)."""
import errno
import multiprocessing
import os
import socket

bind = os.environ.get("RECEIVER_BIND", "0.0.0.0:8080")
# Threaded workers, one process per core. Measured with `python -m bench.run` (2 cores shared
# with Redis and wrk, 500-record topen pushes), two back-to-back runs of 2 x 5 s on
# 2026-12-01: gthread 2x4 gave 69,400 records/s against 59,300 for 2 sync workers (single
# pushes 2,880 vs 2,360 req/s; 58,500 vs 52,100 and 2,800 vs 2,400 in the previous round).
# With a socket per worker (below), 1, 2 and 4 gthread workers gave 55,500 / 55,500 / 60,700
# records/s in the full run of that day (51,700 / 55,500 / 55,400 before): past one per core
# little is gained, as Redis shares these cores. gthread also keeps connections alive
# between a vendor's pushes (sync workers force `Connection: close`) and lets a slow client
# hold one thread, not a worker.
# Rechecked later that day on a faster machine, one run of 3 passes per setting: 2, 4 and 8
# threads gave 2,862 / 3,481 / 3,138 single req/s and 94,300 / 94,900 / 99,900 records/s.
# No count was clearly better, so 4 stays.
# Rechecked on 2026-12-02 on an AMD EPYC machine, three full runs within the hour: 1, 2 and 4
# workers gave 71,600 / 60,600 / 66,100, 81,700 / 95,900 / 87,100 and 82,800 / 79,200 / 88,200
# records/s, and one worker for every app (`--workers 1`) gave 1,490 single req/s against
# 2,532 with two (runs 142953 and 141702). One per core stays: single pushes need the second
# worker, and no count is clearly better for batches. The full run of 2026-12-03 (064503):
# 47,200 / 53,100 / 60,100 records/s for 1, 2 and 4 workers, in line with those; that of
# 091938, on another machine: 74,500 / 100,200 / 81,800 (p99 49 / 82 / 208 ms); that of
# 142334, on a third: 58,600 / 58,900 / 64,200 (p99 62 / 133 / 264 ms); that of 161348, on
# a fourth (Intel): 139,800 / 147,700 / 144,700 (p99 25 / 50 / 112 ms), bound by Redis' core;
# those of 175803 and 182446, on a fifth (AMD): 108,900 / 125,500 / 118,900 and 102,800 /
# 107,500 / 109,700 (p99 36 / 70 / 165 and 39 / 75 / 160 ms); that of 020936, on a sixth
# (AMD): 108,200 / 110,900 / 104,200 (p99 41 / 76 / 166 ms); those of 033146 and 034452, on
# a seventh (AMD): 67,100 / 62,100 / 74,900 and 71,200 / 82,300 / 75,200 (p99 58 / 116 / 209
# and 54 / 102 / 215 ms); that of 183609, on an eighth (AMD): 106,600 / 114,600 / 124,300
# (p99 37 / 72 / 132 ms); those of 203515 and 204830, on a ninth (AMD): 116,800 / 131,300 /
# 131,000 and 116,600 / 128,100 / 127,400 (p99 32 / 59 / 121 and 32 / 66 / 143 ms).
# gevent workers did more in absolute terms (4,472 single req/s, 104,500 records/s) but are
# not the default: the per-thread Redis connection becomes one per greenlet, that is a new
# Redis connection for each vendor connection, and while the spool fsyncs (Redis down) every
# request of that worker would wait.
worker_class = "gthread"
workers = int(os.environ.get("RECEIVER_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("RECEIVER_THREADS", 4))
# A vendor never waits: a request stuck this long is killed and its worker replaced.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Vendor bodies are small forms; refuse absurd request lines and headers early.
limit_request_line = 8190
limit_request_fields = 100
# gunicorn's Python parser, even when gunicorn_h1c (`gunicorn[fast]`) is installed: its C parser
# skips the request-line repair of receiver/gunicorn_compat.py, and smsadmin's raw GB2312 and
# spaces in the URL would be answered 400 and lost. (gunicorn < 25 has neither the setting nor
# the C parser, and ignores the name.)
http_parser = "python"
# One listening socket per worker (SO_REUSEPORT): the kernel spreads new connections over the
# workers. On one shared socket gthread workers accept greedily: under wrk's 4 keep-alive
# connections one of 2 workers took all 4 in 5 of 6 runs (its peer idled at 0.1 s of CPU)
# and the hand-written Flask receiver ran at 69,000-77,000 records/s; with per-worker
# sockets both workers worked and it ran at 120,000-151,000.
reuse_port = True
# gunicorn >= 27 opens a control socket in $HOME shared by every instance on the host.
control_socket_disable = True
accesslog = "-"
errorlog = "-"


def when_ready(server) -> None:
    """Name the address served. With a socket per worker the master holds none, and gunicorn's
    own line reads `Listening at:  (<pid>)`."""
    if not server.LISTENERS:
        served = ", ".join(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
                           for host, port in server.cfg.address)
        server.log.info("Listening at: %s (a socket per worker, SO_REUSEPORT)", served)


def on_starting(server) -> None:
    """Refuse a port that is already taken, with a clear error.

    With SO_REUSEPORT a second receiver run by the same user would otherwise bind the port too
    and silently take part of the pushes. A unix socket or an inherited descriptor (`fd://`)
    keeps the shared listener. A new master started by USR2 (an upgrade in place) skips the
    probe: the old master's workers hold the port until it is told to stop.
    """
    if server.master_pid:
        return
    for address in server.cfg.address:
        if not isinstance(address, tuple):  # a unix socket path, or fd://N
            server.cfg.set("reuse_port", False)
            continue
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            probe.bind(address)
        except OSError as problem:
            if problem.errno == errno.EADDRINUSE:
                raise RuntimeError(f"{address[0]}:{address[1]} is already in use by another "
                                   "process; stop it or choose another port") from None
            raise RuntimeError(f"cannot bind {address[0]}:{address[1]}: {problem}") from None
        finally:
            probe.close()
