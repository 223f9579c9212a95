"""Writing a rendered manifest set to a directory, for the `deploy` commands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click


def write_rendered(directory: Path, files: Mapping[str, str]) -> None:
    """Write `name -> text` under `directory` (sub-folders made as needed), or fail in one line."""
    try:
        for name, text in files.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)
    except OSError as exc:
        raise click.ClickException(f"cannot write to {directory}: {exc.strerror or exc}") from None
