"""The receiver a customer writes by hand: Flask, `request.form['GetReport']`, split on `|` and
`,`, one pipelined XADD per record, no dedupe, no validation. `BENCH_REDIS_URL` names the Redis."""
from __future__ import annotations

import os

import redis
from flask import Flask, request

app = Flask(__name__)
client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


@app.post("/push/topen")
def push() -> tuple[str, int]:
    pipe = client.pipeline(transaction=False)
    for record in request.form["GetReport"].split("|"):
        if not record:
            continue
        parts = record.split(",")
        fields = {"batch_id": parts[0], "mobile": parts[1] if len(parts) > 1 else "",
                  "status": parts[-1]}
        if len(parts) == 4:
            fields["time"] = parts[2]
        pipe.xadd("sms:dlr", fields)
    pipe.execute()
    return "ok", 200


@app.get("/healthz")
def healthz() -> str:
    return "ok"
