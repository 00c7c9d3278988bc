"""gunicorn defaults for the receiver (`receiver serve` and deploy/gunicorn.conf.py use these)."""
import multiprocessing
import os

bind = os.environ.get("RECEIVER_BIND", "0.0.0.0:8080")
# Threaded workers, one process per core. Measured with `python -m bench.run` (2 cores shared
# with Redis and wrk, 500-record topen pushes): gthread 2x4 gave 58,500 records/s against
# 52,100 for 2 sync workers (single pushes 2,800 vs 2,400 req/s). 1, 2 and 4 gthread workers
# gave 45,700 / 59,400 / 50,700 records/s in one full run and 56,600 / 58,300 / 70,700 in the
# next (bench/results/): past one per core the gain is within this box's noise, and Redis
# shares these cores. gthread also keeps connections alive between a vendor's pushes (sync
# workers force `Connection: close`) and lets a slow client hold one thread, not a worker.
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
