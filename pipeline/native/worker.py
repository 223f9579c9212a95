"""A native worker process: `python -m pipeline.native.worker TOPOLOGY_JSON BOOTSTRAP READY_FILE`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import faust

from pipeline.native.app import build_app
from pipeline.topology import Topology


def main(argv: list[str]) -> None:
    topology_file, bootstrap, ready_file = argv
    topology = Topology.model_validate_json(Path(topology_file).read_text())

    def started() -> None:
        # Faust leaves the root logger at DEBUG and filters in the handlers, so every debug call in the
        # Kafka client would still build a record: a measurable cost per event.
        logging.getLogger().setLevel(logging.WARNING)
        Path(ready_file).touch()

    if sys.platform != "win32":  # uvloop: a third less CPU per event than asyncio's own loop here
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = build_app(topology, bootstrap, on_started=started)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
