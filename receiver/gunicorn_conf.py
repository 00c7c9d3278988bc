"""gunicorn defaults for the receiver (`receiver serve` and deploy/gunicorn.conf.py use these)."""
import gc
import multiprocessing
import os

bind = os.environ.get("RECEIVER_BIND", "0.0.0.0:8080")
# Threaded workers: vendors keep connections alive between pushes, and a slow client that
# trickles its body holds one thread, not a whole worker (sync workers also force
# `Connection: close` on every answer). One process per core does the CPU work in parallel.
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
# gunicorn >= 27 opens a control socket in $HOME shared by every instance on the host.
control_socket_disable = True
accesslog = "-"
errorlog = "-"


def post_worker_init(worker):
    """Garbage collection tuned for pushes: a 500-record push allocates ~15,000 objects, which
    at Python's default threshold (700) means ~20 collections per push and a slow full one now
    and then (p99 of a 500-record push in-process: ~45 ms). Freezing what the app loaded and
    collecting the young generation every 20,000 allocations: p99 ~19 ms, +20% records/s
    (bench/README.md). Reference cycles are rare here; they are still collected."""
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
