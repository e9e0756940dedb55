"""``python -m agent.sim.bmc --config FILE``: run simulated BMCs until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from agent.sim.bmc.server import start_bmcs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.sim.bmc", description="Run simulated Redfish BMCs on 127.0.0.1."
    )
    parser.add_argument("--config", required=True, help="JSON config file ({'nodes': [...]})")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        handle = start_bmcs(args.config)
    except (OSError, ValueError) as exc:
        print(f"sim-bmc: {exc}", file=sys.stderr)
        return 2
    for name in handle.names:
        print(f"{name} {handle.url(name)}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
