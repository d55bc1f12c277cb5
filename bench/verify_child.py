"""Run `verify_log` alone in a fresh process and report its time and peak resident memory.

A child of its own so the peak memory is that of verification, not of building the log.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from api.database import create_db_engine
from audit import NoteVerifier, verify_log


def main() -> None:
    url, vkey, origin = sys.argv[1:4]
    engine = create_db_engine(url)
    with engine.connect() as connection:
        start = time.perf_counter()
        report = verify_log(connection, NoteVerifier.parse(vkey), origin)
        seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"entries": report.size, "seconds": seconds, "peak_mib": peak_kib / 1024}))


if __name__ == "__main__":
    main()
