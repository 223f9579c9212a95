"""Writing a rendered set to a directory for the `deploy` commands: the files, and the lagduel wheel that
makes the directory a complete build context for the images."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import click

from pipeline.images import image_problem

WHEEL_HINT = ("build it from a lagduel source tree with `python -m pip wheel --no-deps -w {dest} <source>` "
              "(or copy a lagduel wheel there), or pass --no-wheel to render without one")
SOURCES = ("pyproject.toml", "README.md", "functions", "pipeline", "load", "lagduel")
"""What a wheel is built from: the project file and the packages it names (tests and data stay out)."""


def write_rendered(directory: Path, files: Mapping[str, str], private: Collection[str] = ()) -> None:
    """Write `name -> text` under `directory` (sub-folders made as needed), the `private` names readable
    by their owner only, or fail in one line."""
    try:
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name in private:
                path.unlink(missing_ok=True)
                path.touch(mode=0o600)
            path.write_text(text)
    except OSError as exc:
        raise click.ClickException(f"cannot write to {directory}: {exc.strerror or exc}") from None


def image_option(name: str, default: str, help_text: str, stage_template: bool = False) -> Callable[..., Any]:
    """A click option taking an image reference, refused in one line when it is not one."""
    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        problem = image_problem(value.replace("{stage}", "validate") if stage_template else value)
        if problem:
            raise click.BadParameter(problem)
        return value

    return click.option(name, default=default, show_default=True, callback=check, help=help_text)


def source_tree() -> Path | None:
    """The lagduel project this code runs from, when it runs from a source tree (a checkout, an editable
    install), not from an installed wheel."""
    root = Path(__file__).resolve().parents[1]
    try:
        project = (root / "pyproject.toml").read_text()
    except OSError:
        return None
    return root if 'name = "lagduel"' in project and all((root / p).exists() for p in SOURCES) else None


def build_wheel(dest: Path, source: Path | None = None) -> Path:
    """Build the lagduel wheel into `dest` (replacing any lagduel wheel there) with `pip wheel --no-deps`,
    from a copy of the source tree so the checkout gets no build/ or egg-info; one-line error when lagduel
    does not run from a source tree or pip fails."""
    source = source or source_tree()
    if source is None:
        raise click.ClickException(f"no lagduel wheel in {dest}: lagduel runs from an installed package, not a "
                                   f"source tree, so it cannot build one; " + WHEEL_HINT.format(dest=dest))
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("lagduel-*.whl"):
            old.unlink()
        with tempfile.TemporaryDirectory(prefix="lagduel-wheel-") as tmp:
            copy = Path(tmp) / "src"
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            for name in SOURCES:
                item = source / name
                if item.is_dir():
                    shutil.copytree(item, copy / name, ignore=ignore)
                else:
                    copy.mkdir(exist_ok=True)
                    shutil.copy2(item, copy / name)
            # No build isolation: the running environment's setuptools builds it, offline.
            done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                   "--no-cache-dir", "-q", "-w", str(dest), str(copy)],
                                  capture_output=True, text=True, check=False)
    except OSError as exc:
        raise click.ClickException(f"cannot build the lagduel wheel into {dest}: {exc.strerror or exc}") from None
    wheels = sorted(dest.glob("lagduel-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel written"]
        raise click.ClickException(f"`pip wheel` could not build the lagduel wheel from {source}: {tail[0]}; "
                                   + WHEEL_HINT.format(dest=dest))
    return wheels[-1]
