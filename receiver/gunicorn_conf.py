"""gunicorn defaults for the receiver (`receiver serve` and deploy/gunicorn.conf.py use these)."""
import multiprocessing
import os

bind = os.environ.get("RECEIVER_BIND", "0.0.0.0:8080")
# Sync workers: a push is CPU work plus one Redis round trip; nothing waits long.
worker_class = "sync"
workers = int(os.environ.get("RECEIVER_WORKERS", 2 * multiprocessing.cpu_count()))
# A vendor never waits: a request stuck this long is killed and its worker replaced.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Vendor bodies are small forms; refuse absurd request lines and headers early.
limit_request_line = 8190
limit_request_fields = 100
accesslog = "-"
errorlog = "-"
