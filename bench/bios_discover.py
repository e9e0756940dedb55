"""What tuner's Redfish client costs per BMC: requests and time of one discover (GETs for
planning), for each simulated vendor, Basic and session auth.

    .venv/bin/python bench/bios_discover.py [--reps 5]

Prints one line per vendor and auth: requests sent (from the BMC's request log) and the
median wall time of connect + discover + close. Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from agent.bios.redfish import BmcClient
from agent.sim.bmc import VENDORS, start_bmcs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-bios-"))
    pw = tmp / "pw"
    pw.write_text("bench-secret\n")
    nodes = [
        {
            "name": v,
            "port": 0,
            "vendor": v,
            "username": "root",
            "password_file": str(pw),
            "request_log": str(tmp / f"{v}.jsonl"),
        }
        for v in VENDORS
    ]
    with start_bmcs({"nodes": nodes}) as h:
        for v in VENDORS:
            for auth in ("basic", "session"):
                times, count = [], 0
                for _ in range(args.reps):
                    log = tmp / f"{v}.jsonl"
                    log.write_text("")
                    t = time.perf_counter()
                    c = BmcClient(h.url(v), "root", "bench-secret", auth=auth, timeout=10)
                    c.connect()
                    c.discover()
                    c.close()
                    times.append(time.perf_counter() - t)
                    count = len(log.read_text().splitlines())
                ms = statistics.median(times) * 1000
                print(f"{v:10} {auth:7} {count:2d} requests  {ms:6.1f} ms (median of {args.reps})")


if __name__ == "__main__":
    main()
