"""The HTTP client of `bench/locker_http.py`, run as a process of its own.

A separate process so that its CPU is not the server's (on a 2-core machine it still competes
for the cores, so it reports the CPU it used). It reads one JSON plan on stdin and prints one
JSON report on stdout. Plain `http.client`, no HTTP library on top: its per-byte cost is a
`sendall` of a view or a `readinto` a reused buffer, so the client is not what is measured.

Plans, by "op":

- `upload`: one request (`method`, `url`, `headers`) whose body is `size` bytes: `head`
  (base64), then a 16 MiB random pool over and over, sent in 1 MiB views with a
  Content-Length. The body's SHA-256 is computed before the clock starts. Reports the seconds
  from the first byte sent to the whole answer received, the status, the answer (JSON) and the
  body's size and SHA-256.
- `download`: one GET, read into one reused 1 MiB buffer and hashed as it comes (`verify`,
  default true). Reports the seconds to the last byte, the size, the SHA-256, the status and
  the Repr-Digest header.
- `rate`: `users` threads, each with one kept-alive connection to `bases[i % len(bases)]`,
  sending the same small body (`body`, base64) again and again for `warmup` + `seconds`; the
  path is `path` formatted with the thread and a counter (`{user}`, `{n}`), so each request
  can name a document of its own. Reports the answers with `expect` status completed inside
  the measured window, their rate, p50 and p99 latency, errors and a few error samples.

Every report also carries the client's CPU (user + system) over its timed part, in cores, and
that part's window on the wall clock (for the caller's CPU samples of the servers).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MIB = 1024 * 1024
POOL = 16 * MIB
PIECE = 1 * MIB
TIMEOUT = 120.0
ERROR_SAMPLES = 5


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _wall(start: float, end: float) -> list[float]:
    """A perf_counter interval on the wall clock, which the caller's CPU samples share."""
    offset = time.time() - time.perf_counter()
    return [offset + start, offset + end]


def _connection(base: str) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    assert parts.hostname is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def body_pieces(head: bytes, size: int, pool: bytes) -> Any:
    """`size` bytes: `head`, then `pool` over and over, as views of at most 1 MiB."""
    yield memoryview(head)
    left = size - len(head)
    view = memoryview(pool)
    while left > 0:
        for start in range(0, len(pool), PIECE):
            if left <= 0:
                return
            piece = view[start : start + min(PIECE, left)]
            left -= len(piece)
            yield piece


def upload(plan: dict[str, Any]) -> dict[str, Any]:
    head = base64.b64decode(plan["head"])
    size: int = plan["size"]
    pool = os.urandom(POOL)  # random: nothing on the way can compress it
    digest = hashlib.sha256()
    for piece in body_pieces(head, size, pool):
        digest.update(piece)
    connection = _connection(plan["url"])
    connection.connect()
    cpu, started = _cpu(), time.perf_counter()
    connection.putrequest(plan["method"], _target(plan["url"]), skip_accept_encoding=True)
    for name, value in {**plan["headers"], "Content-Length": str(size)}.items():
        connection.putheader(name, value)
    connection.endheaders()
    for piece in body_pieces(head, size, pool):
        connection.send(piece)
    sent = time.perf_counter()
    response = connection.getresponse()
    answer = response.read()
    ended = time.perf_counter()
    elapsed = ended - started
    cpu = _cpu() - cpu
    connection.close()
    try:
        parsed: Any = json.loads(answer)
    except ValueError:
        parsed = answer.decode(errors="replace")[:500]
    return {
        "status": response.status,
        "answer": parsed,
        "seconds": elapsed,
        "sending_seconds": sent - started,
        "size": size,
        "sha256": base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode(),
        "cpu_cores": cpu / elapsed,
        "window": _wall(started, ended),
    }


def download(plan: dict[str, Any]) -> dict[str, Any]:
    verify = plan.get("verify", True)
    connection = _connection(plan["url"])
    connection.connect()
    buffer = bytearray(PIECE)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    received = 0
    cpu, started = _cpu(), time.perf_counter()
    connection.request("GET", _target(plan["url"]), headers=plan["headers"])
    response = connection.getresponse()
    first = time.perf_counter()
    if response.status != 200:
        text = response.read().decode(errors="replace")[:500]
        return {"status": response.status, "answer": text}
    complete = True
    try:
        while count := response.readinto(buffer):
            if verify:
                digest.update(view[:count])
            received += count
    except http.client.IncompleteRead:
        complete = False
    ended = time.perf_counter()
    elapsed = ended - started
    cpu = _cpu() - cpu
    connection.close()
    return {
        "status": response.status,
        "seconds": elapsed,
        "first_byte_seconds": first - started,
        "size": received,
        "complete": complete,
        "content_length": int(response.headers.get("content-length", "-1")),
        "repr_digest": response.headers.get("repr-digest", ""),
        "sha256": base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        if verify
        else None,
        "cpu_cores": cpu / elapsed,
        "window": _wall(started, ended),
    }


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(text[:300])


def _user(plan: dict[str, Any], user: int, window: tuple[float, float], tally: _Tally) -> None:
    bases: list[str] = plan["bases"]
    body = base64.b64decode(plan["body"])
    headers = {**plan["headers"], "Content-Length": str(len(body))}
    expect: int = plan["expect"]
    connection = _connection(bases[user % len(bases)])
    n = 0
    while time.perf_counter() < window[1]:
        path = plan["path"].format(user=user, n=n)
        n += 1
        start = time.perf_counter()
        try:
            connection.request(plan["method"], path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            if window[0] <= time.perf_counter() <= window[1]:
                tally.error(f"{type(exc).__name__}: {exc}")
            connection.close()
            connection = _connection(bases[user % len(bases)])
            continue
        done = time.perf_counter()
        if window[0] <= done <= window[1]:
            if response.status == expect:
                tally.latencies.append(done - start)
            else:
                tally.error(f"{response.status}: {answer.decode(errors='replace')}")
    connection.close()


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rate(plan: dict[str, Any]) -> dict[str, Any]:
    now = time.perf_counter()
    window = (now + plan["warmup"], now + plan["warmup"] + plan["seconds"])
    tallies = [_Tally() for _ in range(plan["users"])]
    threads = [
        threading.Thread(target=_user, args=(plan, i, window, tallies[i]), daemon=True)
        for i in range(plan["users"])
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window[0] - time.perf_counter()))
    cpu = _cpu()
    time.sleep(max(0.0, window[1] - time.perf_counter()))
    cpu = _cpu() - cpu
    for thread in threads:
        thread.join(TIMEOUT)
    ordered = sorted(t for tally in tallies for t in tally.latencies)
    return {
        "count": len(ordered),
        "rate": len(ordered) / plan["seconds"],
        "p50_ms": _percentile(ordered, 0.50) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
        "errors": sum(t.errors for t in tallies),
        "error_samples": [s for t in tallies for s in t.samples][:ERROR_SAMPLES],
        "cpu_cores": cpu / plan["seconds"],
        "window": _wall(*window),
    }


OPS = {"upload": upload, "download": download, "rate": rate}


def main() -> None:
    plan = json.load(sys.stdin)
    report = OPS[plan["op"]](plan)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os._exit(0)  # no waiting on a daemon thread stuck in a read past the window


if __name__ == "__main__":
    main()
