"""A bounded atheris campaign over every adapter, seeded with the vendors' own pushes: it must
find nothing (decoding never raises, every event honours the schema, nothing unaccounted)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZER = ROOT / "fuzz" / "push_decoders.py"


def test_a_seeded_atheris_campaign_finds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(FUZZER), "--write-seeds", str(corpus)], check=True,
                   cwd=ROOT, timeout=60)
    seeds = len(list(corpus.iterdir()))
    done = subprocess.run([sys.executable, str(FUZZER), str(corpus), "-runs=3000",
                           "-max_len=8192", f"-artifact_prefix={tmp_path}/"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 3000 runs" in done.stderr
    assert seeds >= 20 and not list(tmp_path.glob("crash-*"))
