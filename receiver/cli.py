"""The `receiver` command: `serve`, and the commands that operators and consumers need."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from . import settings as _settings
from .redis_server import RedisServer, ServerNotFound


@click.group()
@click.version_option(package_name="sms-push-receiver")
def main() -> None:
    """The SMS push receiver: vendor pushes in, canonical events on Redis streams out."""


@main.command()
@click.option("--port", type=int, default=8080, show_default=True, help="port to serve on (80 in production)")
@click.option("--host", default="0.0.0.0", show_default=True, help="address to bind")
@click.option("--workers", type=int, default=None, help="gunicorn workers [default: 2 x cores]")
def serve(port: int, host: str, workers: int | None) -> None:
    """Serve the push endpoints under gunicorn.

    With no RECEIVER_REDIS_URL, an embedded redis-server is started that keeps its data on disk
    (AOF) under RECEIVER_DATA_DIR, and is stopped on exit.
    """
    try:
        config = _settings.load()
    except _settings.SettingsError as problem:
        raise click.ClickException(str(problem))
    env = dict(os.environ)
    server = None
    if not env.get("RECEIVER_REDIS_URL"):
        try:
            server = RedisServer(config.data_dir / "redis", persistent=True).start()
        except (ServerNotFound, RuntimeError) as problem:
            raise click.ClickException(f"cannot start the embedded Redis: {problem}")
        env["RECEIVER_REDIS_URL"] = server.url
        click.echo(f"embedded Redis ({server.binary}) at {server.url}, data in "
                   f"{server.directory.resolve()}", err=True)
    command = [sys.executable, "-m", "gunicorn", "-c", "python:receiver.gunicorn_conf",
               "--bind", f"{host}:{port}"]
    if workers:
        command += ["--workers", str(workers)]
    command.append("wsgi:app")
    gunicorn = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        gunicorn.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        code = gunicorn.wait()
    finally:
        if server:
            server.stop()
    sys.exit(code)
