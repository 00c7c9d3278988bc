"""The `receiver` command: `serve`, and the commands that operators and consumers need."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import click

from . import settings as _settings
from .archive import archive_cli, replay
from .redis_server import RedisServer, ServerNotFound, free_port


@click.group()
@click.version_option(package_name="sms-push-receiver")
def main() -> None:
    """The SMS push receiver: vendor pushes in, canonical events on Redis streams out."""


@main.command()
@click.option("--port", type=int, default=8080, show_default=True, help="port to serve on (80 in production)")
@click.option("--host", default="0.0.0.0", show_default=True, help="address to bind")
@click.option("--workers", type=int, default=None, help="gunicorn workers [default: one per core]")
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
    server = gunicorn = None
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Installed before anything starts: a stop during the embedded Redis' start-up must
        # not leave an orphaned redis-server behind.
        stopping.append(signum)
        if gunicorn is not None:
            gunicorn.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        if not env.get("RECEIVER_REDIS_URL"):
            try:
                # Not on the port gunicorn is about to bind: the kernel can hand it out.
                server = RedisServer(config.data_dir / "redis", persistent=True,
                                     port=free_port(avoid={port})).start()
            except (ServerNotFound, RuntimeError) as problem:
                raise click.ClickException(f"cannot start the embedded Redis: {problem}")
            env["RECEIVER_REDIS_URL"] = server.url
            click.echo(f"embedded Redis ({server.binary}) at {server.url}, data in "
                       f"{server.directory.resolve()}", err=True)
        if stopping:
            sys.exit(0)
        command = [sys.executable, "-m", "gunicorn", "-c", "python:receiver.gunicorn_conf",
                   "--bind", f"{host}:{port}"]
        if workers:
            command += ["--workers", str(workers)]
        command.append("wsgi:app")
        gunicorn = subprocess.Popen(command, env=env)
        code = gunicorn.wait()
    finally:
        if server:
            server.stop()
    sys.exit(code)


# -- consumers and operators (issue 4) -----------------------------------------------------------

FORMATS = click.Choice(["json", "cloudevents"])


def _config() -> _settings.Settings:
    try:
        return _settings.load()
    except _settings.SettingsError as problem:
        raise click.ClickException(str(problem))


def _stream_name(config: _settings.Settings, stream: str) -> tuple[str, str]:
    """`dlr`/`mo`/`deadletter` or a full key -> (key, kind)."""
    from .events import SCHEMAS
    from .store import Streams
    name = Streams(config.stream_prefix).stream(stream) if stream in SCHEMAS else stream
    kind = name.rsplit(":", 1)[-1]
    if kind not in SCHEMAS:
        raise click.BadParameter(f"{stream!r}: name dlr, mo, deadletter or a stream key ending "
                                 "in one of them", param_hint="STREAM")
    return name, kind


def _line(fmt: str, kind: str, event: dict, entry_id: str) -> bytes:
    """One JSON line: the event (raw bytes base64) or its CloudEvents envelope."""
    from .consumer import cloudevent, jsonable
    body = cloudevent(kind, event, entry_id) if fmt == "cloudevents" else jsonable(event)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _stop_on_signals(stop) -> None:
    """First Ctrl-C or SIGTERM: finish the entry in hand, then stop. A second: stop at once
    (what was read but not acked stays pending, nothing is lost)."""
    seen = []

    def handler(signum: int, _frame: object) -> None:
        if seen:
            raise KeyboardInterrupt
        seen.append(signum)
        click.echo(f"receiver: {signal.Signals(signum).name}, stopping after the entry in hand",
                   err=True)
        stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _quiet_stdout() -> None:
    """After a broken pipe, keep Python from failing again while flushing stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _logging() -> None:
    import logging
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("stream")
@click.option("--group", "-g", required=True, help="consumer group (created if missing)")
@click.option("--consumer", "-c", default=None,
              help="this consumer's name: unique per process, stable across restarts "
                   "[default: RECEIVER_CONSUMER_NAME, else the host name]")
@click.option("--format", "fmt", type=FORMATS, default="json", show_default=True,
              help="event fields as JSON, or a CloudEvents 1.0 JSON envelope")
@click.option("--start", default="0", show_default=True,
              help="where a new group starts: 0 = every entry the stream holds, $ = new only")
@click.option("--claim-idle", type=click.FloatRange(min=0.001), default=60.0,
              show_default=True, envvar="RECEIVER_CONSUMER_CLAIM_IDLE",
              help="seconds after which another consumer's unacked entries are taken over")
@click.option("--max-deliveries", type=click.IntRange(min=1), default=5, show_default=True,
              envvar="RECEIVER_CONSUMER_MAX_DELIVERIES",
              help="deliveries after which an entry goes to the dead-letter stream")
@click.option("--count", type=click.IntRange(min=1), default=10, show_default=True,
              help="entries per read")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="stop after this many entries")
def consume(stream: str, group: str, consumer: str | None, fmt: str, start: str,
            claim_idle: float, max_deliveries: int, count: int, limit: int | None) -> None:
    """Print STREAM's events for a consumer group, one JSON line each, acking each once printed.

    STREAM is dlr, mo, deadletter (under RECEIVER_STREAM_PREFIX) or a full stream key. Dead
    letters' raw query and body are printed base64-encoded. Stops cleanly on Ctrl-C or SIGTERM.
    """
    from .consumer import ConsumerGroup, Stop, default_consumer
    from .store import connect
    config = _config()
    name, kind = _stream_name(config, stream)
    _logging()
    block = 1.0
    client = connect(config.redis_url, cluster=config.redis_cluster,
                     timeout=config.redis_timeout + block)
    prefix = name.rsplit(":", 1)[0]
    worker = ConsumerGroup(client, name, group, consumer or default_consumer(), kind=kind,
                           start_id=start, claim_idle=claim_idle, max_deliveries=max_deliveries,
                           count=count, block=block, deadletter=f"{prefix}:deadletter",
                           retention=config.retention)
    out = sys.stdout.buffer
    broken = []

    def emit(event: dict, message) -> None:
        try:
            out.write(_line(fmt, kind, event, message.id))
            out.flush()
        except BrokenPipeError:
            broken.append(True)
            raise Stop from None

    _stop_on_signals(worker.stop)
    try:
        worker.create()
    except Exception as problem:  # redis errors: say so plainly
        raise click.ClickException(f"cannot create group {group} on {name}: {problem}")
    try:
        worker.run(emit, limit=limit, with_message=True)
    except KeyboardInterrupt:
        pass
    if broken:
        _quiet_stdout()


@main.command()
@click.argument("stream")
@click.option("--format", "fmt", type=FORMATS, default="json", show_default=True)
@click.option("--last", "-n", type=click.IntRange(min=0), default=0, show_default=True,
              help="first print this many of the latest entries")
def tail(stream: str, fmt: str, last: int) -> None:
    """Print STREAM's entries as they arrive (no group, nothing acked), one JSON line each."""
    import logging
    import redis
    from marshmallow import ValidationError
    from .consumer import load_entry
    from .store import connect
    config = _config()
    name, kind = _stream_name(config, stream)
    _logging()
    log = logging.getLogger("receiver.tail")
    client = connect(config.redis_url, cluster=config.redis_cluster,
                     timeout=config.redis_timeout + 1.0)
    out = sys.stdout.buffer
    stopping = []
    _stop_on_signals(lambda: stopping.append(True))

    def show(entry_id: bytes, fields: dict) -> None:
        try:
            event = load_entry(kind, fields)
        except (ValidationError, UnicodeDecodeError) as problem:
            log.warning("%s %s does not match the %s schema: %s", name, entry_id.decode(), kind,
                        getattr(problem, "messages", problem))
            event = {k.decode(): v if k in (b"query", b"body") else
                     v.decode("utf-8", "backslashreplace") for k, v in fields.items()}
        out.write(_line(fmt, kind, event, entry_id.decode()))
        out.flush()

    try:
        latest = client.xrevrange(name, count=max(last, 1))
        after = latest[0][0].decode() if latest else "0-0"
        for entry_id, fields in reversed(latest[:last]):
            show(entry_id, fields)
        click.echo(f"receiver: tailing {name} after {after}", err=True)
        while not stopping:
            try:
                reply = client.xread({name: after}, count=100, block=1000)
            except (redis.ConnectionError, redis.TimeoutError) as problem:
                log.warning("Redis unavailable (%s), retrying", problem)
                time.sleep(1.0)
                continue
            for entry_id, fields in (reply[0][1] if reply else []):
                show(entry_id, fields)
                after = entry_id.decode()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        _quiet_stdout()


@main.command("streams")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per stream")
def streams_command(names: tuple[str, ...], as_json: bool) -> None:
    """Length, first and last entry time of each stream, and per consumer group its consumers,
    pending count, lag and oldest pending entry. NAMES: streams (default: dlr, mo, deadletter)."""
    import redis
    from . import ops
    from .store import Streams, connect
    config = _config()
    keys = [_stream_name(config, n)[0] for n in names] or list(Streams(config.stream_prefix).all)
    client = connect(config.redis_url, cluster=config.redis_cluster, timeout=config.redis_timeout)
    try:
        stats = ops.stream_stats(client, keys)
    except redis.RedisError as problem:
        raise click.ClickException(f"Redis at {config.redis_url}: {problem}")
    if as_json:
        for s in stats:
            click.echo(json.dumps(s.as_dict()))
    else:
        click.echo(ops.render(stats))


# -- the audit archive (issue 3) ----------------------------------------------------------------

main.add_command(archive_cli)  # receiver archive search | maintain
main.add_command(replay)       # receiver replay
