"""A native worker process: `python -m pipeline.native.worker TOPOLOGY_JSON BOOTSTRAP READY_FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

import faust

from pipeline.native.app import build_app
from pipeline.topology import Topology


def main(argv: list[str]) -> None:
    topology_file, bootstrap, ready_file = argv
    topology = Topology.model_validate_json(Path(topology_file).read_text())
    app = build_app(topology, bootstrap, on_started=lambda: Path(ready_file).touch())
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
