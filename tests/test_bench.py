"""The benchmark harness runs (a tiny bounded run, so it does not rot). Nothing here asserts a
time: the numbers of a 1-second run on a test machine mean nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAIN = ["hello", "floor single", "naive single", "naive batch", "contract batch",
        "receiver single", "receiver batch", "smsadmin single", "returnsms single",
        "returnsms batch"]


def bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One `--quick` run with a short scaling curve: (process, results folder)."""
    out = tmp_path_factory.mktemp("bench")
    done = bench("--quick", "--batch-sizes", "1,10,500", "--worker-counts", "1,2",
                 "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return done, out


def test_quick_run_writes_table_json_and_plot(quick):
    done, out = quick
    names = sorted(p.name for p in out.iterdir())
    stamps = {re.sub(r"(-scaling)?\.(md|json|png)$", "", n) for n in names}
    assert len(stamps) == 1, names
    stamp = stamps.pop()
    # --quick measures nothing worth keeping: no latest.* copies.
    assert names == sorted([f"{stamp}.md", f"{stamp}.json", f"{stamp}-scaling.png"])
    assert (out / f"{stamp}-scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / f"{stamp}.md").read_text()
    assert table.strip() == done.stdout.strip()
    number = r"[\d,]+(?:\.\d+)?"
    for name in MAIN + ["receiver batch 10", "naive batch 10", "receiver batch, 1 workers",
                        "naive batch, 1 workers", "redis ceiling (Publisher, no HTTP)",
                        "receiver batch at 50 pushes/s", "naive batch at 50 pushes/s"]:
        row = re.search(rf"^\| {re.escape(name)} \| (\d+) \| (\d+) \| ({number}) \| ({number}) \|",
                        table, re.M)
        assert row, f"no row for {name!r} in:\n{table}"
    verdicts = re.findall(r"^\| .+ \| .+ \| [≤≥] .+ \| (holds|MISSED|n/a) \|$", table, re.M)
    assert len(verdicts) == 5, table
    assert "| cpu |" in table and "| redis-server |" in table and "| wrk |" in table
    assert re.search(r"floor single: .+ reaches [\d.]+ .+ receiver reaches [\d.]+", table), table
    assert re.search(r"\(contract batch: .+ reaches [\d.]+ .+ receiver reaches [\d.]+", table), table
    # The baselines' speed moves with redis-py's packer: the report names the version.
    assert re.search(r"pack each record's XADD with redis-py \d+\.\d+", table), table


def test_quick_run_counts_what_the_streams_hold(quick):
    """Every scenario was loaded, and records/s comes from entries really in the streams."""
    _, out = quick
    data = json.loads(next(out.glob("*.json")).read_text())
    rows = {row["name"]: row for row in data["rows"]}
    assert set(MAIN) <= set(rows)
    for row in data["rows"] + [data["ceiling"], data["fixed"], data["naive_fixed"]]:
        (run,) = row["runs"]
        assert run["requests"] > 0, row["name"]
        if row["name"] == "hello":
            assert run["stored"] == 0 and run["records_per_s"] == 0
            continue
        # Nothing a completed push carried is missing from the streams (a rename of the
        # streams or a lost record would show here as a ratio below 1).
        assert run["stored"] > 0 and run["stored_ratio"] >= 1.0, row
        assert run["records_per_s"] > 0, row
    assert len(data["targets"]) == 5


@pytest.mark.parametrize("bad, letters", [((), 0), (("--bad",), 20)])
def test_redis_cost_table_has_a_line_per_way(bad, letters):
    """bench/redis_cost.py runs and prints one row of µs per entry for each way of writing;
    with --bad, of a push whose every record is a dead letter."""
    done = subprocess.run([sys.executable, "-m", "bench.redis_cost", "--records", "20",
                           "--pushes", "3", "--passes", "1", *bad], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"20 entries per push ({letters} dead letters;" in done.stdout, done.stdout
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) \| ([\d.]+|nan) \|$", done.stdout, re.M)
    assert [name for name, _, _ in rows] == [
        "receiver script (claim + XADD per entry)", "receiver script without the claims",
        "pipelined XADD, the receiver's fields", "pipelined XADD, naive's 3 fields",
        "native dedupe (3 SMISMEMBER + SADD + PEXPIREAT per push)",
        "pipelined SET NX PX (a key per id, the old claim)"], done.stdout


def test_pack_cost_counts_what_each_handler_packs_through_redis_py():
    """bench/pack_cost.py runs the three batch handlers in process and stores every entry;
    the naive and contract handlers' commands go through redis-py's packer (an XADD per
    record, and the contract's SADD and PEXPIRE), the receiver's never do."""
    done = subprocess.run([sys.executable, "-m", "bench.pack_cost", "--records", "20",
                           "--pushes", "3", "--passes", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(entries stored: 180 of 180)" in done.stdout, done.stdout
    rows = re.findall(r"^\| (naive|contract|receiver) \| [\d.]+ \| (\d+) \|", done.stdout, re.M)
    assert rows == [("naive", "20"), ("contract", "22"), ("receiver", "0")], done.stdout


def test_missing_load_generator_is_named_with_its_install(tmp_path):
    done = bench("--quick", "--wrk", str(tmp_path / "no-wrk"), "--out", str(tmp_path),
                 timeout=60)
    assert done.returncode == 2
    assert "wrk not found" in done.stderr and "apt-get install wrk" in done.stderr
    assert not list(tmp_path.iterdir())


def test_resilience_report_quick_run_loses_and_doubles_nothing(tmp_path):
    """bench/resilience.py --quick: Redis stopped, workers killed, hostile inputs; the report's
    reconciliation must come out with nothing lost and nothing doubled (counts, not times)."""
    out = tmp_path / "resilience.txt"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "resilience.py"), "--quick",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("(")]
    assert [row[:3] for row in rows] == ["(a)", "(b)", "(c)"]
    for row in rows:
        *_, duplicates, lost, _seconds = row.split()
        assert (duplicates, lost) == ("0", "0"), row
