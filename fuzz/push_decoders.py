"""Coverage-guided fuzzing (atheris) of every vendor's decoding, as the view does it.

    python fuzz/push_decoders.py --write-seeds CORPUS   # the vendor documents' pushes as seeds
    python fuzz/push_decoders.py CORPUS -runs=200000    # a campaign (new finds go to CORPUS)

Each input picks a vendor, a method and a content type, and splits the rest into query and
body bytes. The finding that counts, checked on every input: decoding never raises, every
event it produces honours the schema, and a push either yields events or failures (dead
letters) or is one of the documented empty batches: no bytes unaccounted for.
"""
import sys
from zoneinfo import ZoneInfo

import atheris

with atheris.instrument_imports(include=["receiver"]):
    from receiver import events, views
    from receiver.settings import VendorSettings
    from receiver.vendors import REGISTRY, Push

VENDORS = sorted(REGISTRY)
CONTENT_TYPES = ["application/x-www-form-urlencoded", "text/xml", "", "text/plain; charset=gb2312"]
CONFIGS = {slug: VendorSettings(encoding=adapter.encoding, zone=ZoneInfo("Asia/Shanghai"))
           for slug, adapter in REGISTRY.items()}


def split(data: bytes) -> tuple[str, Push]:
    """Input layout (simple, so real pushes can seed the corpus): byte 0 picks the vendor,
    byte 1 the method (bit 0) and content type (bits 1-2), bytes 2-3 the query length (big
    endian); then the query, then the body."""
    head = data[:4].ljust(4, b"\0")
    vendor = VENDORS[head[0] % len(VENDORS)]
    method = "GET" if head[1] & 1 else "POST"
    content_type = CONTENT_TYPES[(head[1] >> 1) % len(CONTENT_TYPES)]
    cut = 4 + int.from_bytes(head[2:4], "big")
    return vendor, Push(method=method, query=data[4:cut], body=data[cut:],
                        content_type=content_type)


def seed(vendor: str, body: bytes, query: bytes = b"", content_type: int = 0) -> bytes:
    """A corpus entry for a real push."""
    return (bytes([VENDORS.index(vendor), content_type << 1]) + len(query).to_bytes(2, "big")
            + query + body)


def test_one_input(data: bytes) -> None:
    vendor, push = split(data)
    found, failures = views.decode(vendor, push, CONFIGS[vendor], "2026-01-01T00:00:00.000+00:00")
    for event in found:
        problems = events.check(event)
        if problems:
            raise AssertionError(f"{vendor} event breaks the schema: {problems}: {event}")
    # Nothing at all is only for the 云信 platform's documented empty batch (`GetReport=`: "an
    # empty string when there is nothing to report"); its decoder raises when no batch field is
    # there, which makes a failure (a dead letter).
    if not found and not failures and vendor not in ("topen", "winnerlook"):
        raise AssertionError(f"{vendor}: a push yielded neither events nor failures")


def write_seeds(directory: str) -> None:
    """Seed a corpus directory with the vendor documents' pushes (tests/samples and inline)."""
    from pathlib import Path
    samples = Path(__file__).resolve().parent.parent / "tests" / "samples"
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [seed("topen", b"account=a&GetReport=0278387837488834,13900000000,DELIVRD|"
                           b"0278387837488834,,13900000005,2014-06-10 15:34:11,DELIVRD|"),
             seed("topen", "account=a&GetMo=13900000000|,|退订|,|2014-06-10 15:34:11|,|106904|;|"
                           .encode()),
             seed("winnerlook", b"account=a&GetReport=2314357620085030623,13900000000,0,30,2|"),
             seed("smsadmin", b"", b"Class=mo&SmsName=ID&Mobile=13802102102&Message=%CD%CB"
                                  b"%B6%A9&LinkId=1&RevertTime=0000-00-00 00:00:00")]
    for sample in sorted(samples.glob("*")):
        vendor = sample.name.split("_", 1)[0]
        if vendor in VENDORS:
            seeds.append(seed(vendor, sample.read_bytes(), content_type=1 if vendor == "returnsms" else 0))
    for n, data in enumerate(seeds):
        (out / f"seed-{n:03d}").write_bytes(data)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--write-seeds":
        write_seeds(sys.argv[2])
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
