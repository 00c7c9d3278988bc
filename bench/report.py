"""The benchmark's output: a Markdown table of medians, the target ratios, JSON and a PNG."""
from __future__ import annotations

import importlib.util
import json
import math
import statistics
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import payloads


class PlotMissing(RuntimeError):
    """matplotlib is not installed."""


def check_plotting() -> None:
    """Raise PlotMissing, saying how to install it, when matplotlib cannot be imported."""
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotMissing("matplotlib not installed (the scaling plot needs it): "
                          "pip install -e '.[bench]' (or pip install matplotlib)")


@dataclass
class Result:
    """Everything one benchmark run produced."""

    command: str
    started: str
    seconds: int
    machine: dict[str, str]
    args: dict[str, Any]
    rows: list            # run.Row, in plan order
    ceiling: Any          # run.Row
    fixed: Any            # run.Row: the receiver's 500-record push at a fixed rate
    naive_fixed: Any      # run.Row: the same for the naive handler
    rss_after: dict[str, Any]
    batch: int

    def row(self, name: str):
        return next((r for r in self.rows if r.name == name), None)


def _num(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


_HEADER = ("| scenario | workers | records/push | req/s | records/s | p50 ms | p99 ms | "
           "peak RSS/worker MB | worker CPU µs/record | Redis CPU µs/record | stored/expected |\n"
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")


def _line(row) -> str:
    stored = row.median("stored_ratio")
    return (f"| {row.name} | {row.workers} | {row.records_per_push} | "
            f"{_num(row.median('requests_per_s'))} | {_num(row.median('records_per_s'))} | "
            f"{_num(row.median('p50_ms'), 1)} | {_num(row.median('p99_ms'), 1)} | "
            f"{_num(row.peak('peak_rss_mb'), 1)} | {_num(row.median('cpu_us_per_record'), 1)} | "
            f"{_num(row.median('redis_cpu_us_per_record'), 1)} | {_num(stored, 3)} |")


def _paired(top, bottom, column: str) -> tuple[float, str]:
    """The ratio within each run (the two scenarios measured minutes apart in the same
    pass), then the median of those: on a shared box a slow minute then moves both sides.
    Returns (median, "median (min-max)")."""
    if not (top and bottom and top.runs and bottom.runs):
        return float("nan"), "n/a"
    ratios = [getattr(a, column) / getattr(b, column)
              for a, b in zip(top.runs, bottom.runs) if getattr(b, column)]
    if not ratios:
        return float("nan"), "n/a"
    middle = statistics.median(ratios)
    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    return middle, f"{middle:.2f}{spread}"


def targets(result: Result) -> list[tuple[str, str, str, str]]:
    """(target, measured, goal, verdict) for each target of the issue: ratios as the median
    of the per-run ratios (with their range), p99 and RSS from the medians and peaks."""
    def med(name: str | None, column: str, row=None) -> float:
        row = row or result.row(name)
        return row.median(column) if row and row.runs else float("nan")

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("holds" if ok else "MISSED")

    out = []
    for (top, bottom, column, label, goal) in (
            (result.row("receiver batch"), result.row("naive batch"), "records_per_s",
             "receiver batch records/s ÷ naive batch records/s", 1.0),
            (result.row("receiver batch"), result.ceiling, "records_per_s",
             "receiver batch records/s ÷ Redis ceiling records/s", 0.6),
            (result.row("receiver single"), result.row("hello"), "requests_per_s",
             "receiver single req/s ÷ hello req/s", 0.5)):
        ratio, shown = _paired(top, bottom, column)
        out.append((label, shown, f"≥ {goal}", verdict(None if math.isnan(ratio) else ratio >= goal)))
    p99 = med(None, "p99_ms", result.fixed)
    rate = result.args.get("rate")
    out.append((f"p99 of a {result.batch}-record push at {rate:g} pushes/s", f"{p99:.1f} ms",
                "≤ 50 ms", verdict(None if math.isnan(p99) else p99 <= 50)))
    rss, records = result.rss_after.get("rss_mb", float("nan")), result.rss_after.get("records", 0)
    per_worker = records // max(1, result.rss_after.get("workers", 1))
    reached = per_worker >= 100_000
    out.append((f"receiver RSS per worker after {records:,} records (~{per_worker:,} per worker)",
                f"{rss:.1f} MB", "≤ 80 MB after 100,000 records",
                verdict((rss <= 80) if reached and not math.isnan(rss) else None)))
    return out


def markdown(result: Result) -> str:
    """The results as Markdown: machine, main table, targets, scaling tables."""
    lines = [f"# Benchmark {result.started}", "",
             f"Command: `{result.command}` ({result.seconds} s). "
             f"Medians of {result.args['runs']} run(s) of {result.args['duration']} s per "
             f"scenario; wrk with {result.args['connections'] or '4 x workers'} connections; gunicorn "
             f"{result.args.get('worker_class', 'sync')} workers"
             f"{' x %s threads' % result.args.get('threads') if result.args.get('worker_class') == 'gthread' else ''}"
             " for every app; RSS is the peak over the runs.", "", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.machine.items()]
    lines += ["", "## Throughput and latency", "", _HEADER]
    lines += [_line(r) for r in result.rows if r.group == "main"]
    lines += [_line(result.ceiling), _line(result.fixed), _line(result.naive_fixed)]
    lines += ["", "## Targets (ratios within each pass of this run: median, and range over the passes)", "",
              "| target | measured | goal | verdict |", "|---|--:|---|---|"]
    lines += [f"| {t} | {m} | {g} | {v} |" for t, m, g, v in targets(result)]
    naive, batch = result.row("naive batch"), result.row("receiver batch")
    if naive and batch and naive.runs and batch.runs:
        pushes = batch.median("requests_per_s") / naive.median("requests_per_s")
        kept = payloads.topen(result.batch).receiver_entries
        lines += ["", f"Pushes/s ratio, receiver batch ÷ naive batch: {pushes:.2f}. Records/s "
                  f"counts entries actually added: the receiver adds {kept} of each "
                  f"{result.batch}-record push (it skips the {result.batch - kept} in-push "
                  f"duplicates), the naive handler all {result.batch}. The naive and contract "
                  f"handlers pack each record's XADD with redis-py "
                  f"{result.machine.get('redis-py', '?')}, so their records/s move with its "
                  f"releases (bench/README.md, *How to read the table*); the receiver packs "
                  f"its own."]
    hello, floor, single = (result.row(name) for name in ("hello", "floor single", "receiver single"))
    if floor and floor.runs:
        lines += ["", "Where the single-push time goes: one Redis round trip (floor single: a bare "
                  "WSGI app making one 3-field XADD) reaches "
                  f"{_paired(floor, hello, 'requests_per_s')[1]} × hello's requests/s, and the "
                  f"receiver reaches {_paired(single, floor, 'requests_per_s')[1]} × the floor's."]
    contract = result.row("contract batch")
    if contract and contract.runs and naive and batch:
        lines += ["", "What the contract's entries cost: the naive handler made to write them "
                  "(contract batch: the receiver's 10-11 fields per record and one SADD claim "
                  "per push, pipelined with redis-py, no script, still no checking) reaches "
                  f"{_paired(contract, naive, 'records_per_s')[1]} × the naive handler's "
                  f"records/s, and the receiver reaches "
                  f"{_paired(batch, contract, 'records_per_s')[1]} × that."]
    scaling = [r for r in result.rows if r.group != "main"]
    if scaling:
        lines += ["", "## Scaling (see the PNG)", "", _HEADER] + [_line(r) for r in scaling]
    return "\n".join(lines) + "\n"


def curves(result: Result) -> dict[str, dict[str, list[tuple[int, float, float, float]]]]:
    """Per curve and server: (x, median, min, max) of records/s."""
    def point(row, x: int):
        values = [m.records_per_s for m in row.runs]
        return (x, row.median("records_per_s"), min(values), max(values))

    workers = result.args["workers"]
    out: dict[str, dict[str, list]] = {"batch": {}, "workers": {}}
    for server in ("naive", "receiver"):
        batch_points, worker_points = [], []
        for row in result.rows:
            if row.server != server or not row.runs or row.records_per_push == 0:
                continue
            if row.name in (f"{server} single", f"{server} batch") or (
                    row.group == "batch" and row.workers == workers):
                batch_points.append(point(row, row.records_per_push))
            if row.records_per_push == result.batch and (
                    row.group == "workers" or row.name == f"{server} batch"):
                worker_points.append(point(row, row.workers))
        out["batch"][server] = sorted(batch_points)
        out["workers"][server] = sorted(worker_points)
    return out


def plot(result: Result, path: Path) -> None:
    """Records/s against records per push and against workers, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curves(result)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ceiling = result.ceiling.median("records_per_s") if result.ceiling.runs else None
    titles = {"batch": (f"records/s by records per push ({result.args['workers']} workers)",
                        "records per push", "log"),
              "workers": (f"records/s by gunicorn workers ({result.batch}-record pushes)",
                          f"{result.args.get('worker_class', 'sync')} workers", "linear")}
    for axis, (curve, (title, xlabel, scale)) in zip(axes, titles.items()):
        for server, style in (("naive", "s--"), ("receiver", "o-")):
            points = data[curve].get(server) or []
            if not points:
                continue
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            errors = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            axis.errorbar(xs, ys, yerr=errors, fmt=style, capsize=3, label=server)
        if ceiling:
            axis.axhline(ceiling, color="grey", linestyle=":",
                         label=f"Redis ceiling: the receiver's script, {result.args['workers']} clients")
        axis.set_xscale(scale)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("stream entries added per second")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
        if curve == "workers":
            axis.set_xticks(sorted({p[0] for pts in data[curve].values() for p in pts}) or [1])
    figure.suptitle(f"{result.machine.get('cpu', '')}, {result.machine.get('cpus', '?')} cpus — "
                    f"{result.started} — naive on redis-py {result.machine.get('redis-py', '?')}",
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plain(value: Any) -> Any:
    """JSON-ready: NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write(result: Result, folder: Path, *, stamp: str, latest: bool) -> list[Path]:
    """`<stamp>.md`, `<stamp>.json`, `<stamp>-scaling.png`; with `latest`, also copies as
    `latest.md`, `latest.json` and `scaling.png` (the ones the README shows)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / f"{stamp}.md"
    text.write_text(markdown(result))
    data = folder / f"{stamp}.json"
    payload = {k: v for k, v in asdict(result).items()}
    payload["targets"] = [dict(zip(("target", "measured", "goal", "verdict"), t))
                          for t in targets(result)]
    data.write_text(json.dumps(_plain(payload), indent=1, default=str))
    picture = folder / f"{stamp}-scaling.png"
    plot(result, picture)
    paths = [text, data, picture]
    if latest:
        for source, name in ((text, "latest.md"), (data, "latest.json"), (picture, "scaling.png")):
            shutil.copyfile(source, folder / name)
            paths.append(folder / name)
    return paths
