"""Production gunicorn settings: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

The defaults live in receiver/gunicorn_conf.py (shared with `receiver serve`), with the
benchmark figures behind them in its comments: gthread, one worker per core, 4 threads, one
listening socket per worker (set RECEIVER_WORKERS on a box where Redis runs elsewhere).
This file only binds port 80, which the systemd unit lets a non-root user
do (CAP_NET_BIND_SERVICE).
"""
from receiver.gunicorn_conf import *  # noqa: F401,F403

bind = "0.0.0.0:80"
