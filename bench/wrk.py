"""wrk, the load generator: signed POSTs of ~1 KB JSON bodies, bounded in time, parsed into a ``WrkResult``."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .proc import Recorder

SCRIPT = Path(__file__).with_name("signed_post.lua")
SECRET = "bench-hmac-secret"
TOKEN = "bench-token"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    ok: int  # 2xx
    c4xx: int
    c5xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "2xx/s": round(self.ok_per_s, 1),
            "requests": self.requests,
            "2xx": self.ok,
            "4xx": self.c4xx,
            "5xx": self.c5xx,
            "socket errors": self.socket_errors,
            "p50 ms": self.p50_ms,
            "p90 ms": self.p90_ms,
            "p99 ms": self.p99_ms,
            "p99.9 ms": self.p999_ms,
        }


def available() -> bool:
    return shutil.which("wrk") is not None


def body(n: int, size: int = 1024) -> bytes:
    """A webhook-like JSON body of exactly ``size`` bytes, unique by ``n``."""
    head = {
        "id": f"evt_{n:012d}",
        "type": "invoice.paid",
        "created": 1767225600 + n,
        "data": {"object": {"id": f"in_{n:012d}", "amount_due": 4200 + n % 977, "currency": "eur", "paid": True}},
        "pad": "",
    }
    raw = json.dumps(head, separators=(",", ":")).encode()
    head["pad"] = "x" * max(0, size - len(raw))
    return json.dumps(head, separators=(",", ":")).encode()


def write_requests(path: Path, count: int = 1000, size: int = 1024, secret: str = SECRET) -> Path:
    """The request file the Lua script reads: one signed body per line."""
    with path.open("w") as out:
        for n in range(count):
            raw = body(n, size)
            signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            out.write(f"{signature}\t{raw.decode()}\n")
    return path


def run(
    url: str,
    requests_file: Path,
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    timeout: float = 10.0,
    recorder: Recorder | None = None,
    token: str = TOKEN,
) -> WrkResult:
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout:g}s",
        "--latency", "-s", str(SCRIPT), url, "--", str(requests_file), token,
    ]  # fmt: skip
    if recorder is not None:
        recorder.add(argv)
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout + 30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr}\n{result.stdout}")
    return parse(result.stdout, fallback_seconds=time.monotonic() - started)


def parse(output: str, fallback_seconds: float = 0.0) -> WrkResult:
    line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{output}")
    d = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = d["duration_us"] / 1e6 or fallback_seconds
    return WrkResult(
        requests=d["requests"],
        seconds=seconds,
        ok=d["c2xx"],
        c4xx=d["c4xx"],
        c5xx=d["c5xx"],
        socket_errors=d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"],
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        p999_ms=d["p999_us"] / 1000,
        max_ms=d["max_us"] / 1000,
    )
