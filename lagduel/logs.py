"""Quiet terminal, full log: every log record goes to a file; the terminal shows errors only (more with -v),
and one line at the end points to the file when warnings were logged.

librdkafka's own lines (GETPID, coordinator-load notices, connection retries) reach Python logging through
the clients' `logger` setting (pipeline.kafka.settings) and land in the same file.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import click

from pipeline.settings import read_environment

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def configure(verbose: int) -> None:
    """Log to `<cache>/logs/lagduel-<time>-<pid>.log`; the terminal gets ERROR (WARNING with -v, INFO with -vv)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "lagduel", False)]:  # configured again in one process
        root.removeHandler(old)
        old.close()
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.captureWarnings(True)  # e.g. urllib3's InsecureRequestWarning per API call: to the log, once each
    console = logging.StreamHandler()
    console.setLevel((logging.ERROR, logging.WARNING, logging.INFO)[min(verbose, 2)])
    console.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(console)
    folder = read_environment().cache_dir / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"lagduel-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        file = logging.FileHandler(path, delay=True)
    except OSError:
        console.lagduel = True  # type: ignore[attr-defined]
        return  # no writable cache: the terminal keeps what it shows
    file.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(file)
    counter = _Counter()
    root.addHandler(counter)
    for h in (console, file, counter):
        h.lagduel = True  # type: ignore[attr-defined]
    click.get_current_context().call_on_close(lambda: _point_to(path, counter))


def _point_to(path: Path, counter: _Counter) -> None:
    if counter.count:
        click.echo(f"{counter.count} warning(s) logged: {path}", err=True)
