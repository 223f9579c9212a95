"""`lagduel compare RUN RUN ...`: runs side by side, with the change of each metric against the first."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from load.report.markdown import compare_markdown, compare_rows
from load.runfolder import read_summary


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--markdown", is_flag=True, help="Print a Markdown table (for a PR) instead of a terminal table.")
def compare(runs: tuple[Path, ...], markdown: bool) -> None:
    """Set run folders (or their summary.json) side by side; changes are against the first run."""
    try:
        summaries = [(p.name if p.is_dir() else p.parent.name, read_summary(p)) for p in runs]
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if markdown:
        click.echo(compare_markdown(summaries), nl=False)
        return
    table = Table(title="lagduel compare (change against the first run)", title_justify="left")
    for col in ("backend", "metric", *(name for name, _ in summaries)):
        table.add_column(col, justify="left" if col in ("backend", "metric") else "right")
    for row in compare_rows(summaries):
        table.add_row(*row)
    Console().print(table)
