"""gunicorn defaults for the receiver (`receiver serve` and deploy/gunicorn.conf.py use these)."""
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

