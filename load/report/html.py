"""Render the HTML report: one dict of template arguments, one Jinja template, plotly.js inlined."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("load.report", "templates"), autoescape=select_autoescape(["html", "j2"]))


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render_html(args: dict[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(**args, plotly_js=plotly_js())
