"""Container images: their references, checked as the container runtimes parse them (distribution/reference
grammar), and the build-context files each backend renders next to its manifests."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"\w[\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
NAME_MAX = 255


def image_problem(reference: str) -> str | None:
    """Why `reference` is not an image reference (`[registry[:port]/]path[:tag][@digest]`), or None."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        return (f"{reference!r} is not an image reference ([registry[:port]/]name[:tag][@digest], "
                "the name lowercase)")
    if len(match["name"]) > NAME_MAX:
        return f"{reference!r}: the image name is longer than {NAME_MAX} characters"
    return None


def context_files(package: str, folder: str = "image") -> dict[str, str]:
    """Relative path -> text of every file under `package`/`folder` (package data): the Dockerfiles,
    templates and handlers a render writes beside the manifests, so the rendered directory is a build context."""
    out: dict[str, str] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, f"{prefix}{child.name}/")
            elif not child.name.endswith((".pyc", ".pyo")):
                out[prefix + child.name] = child.read_text()

    walk(files(package) / folder, "")
    return out
