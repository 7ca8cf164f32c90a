"""The results table: every number quoted in the README, read from results/.

Each :class:`Row` names a JSON file under ``results/``, the key path of one
number in it, and the command that regenerates the file. The table is written
to ``results/summary.md`` and, on request, between the ``results`` markers of
README.md, so no number in the README is typed by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from digitlab import paths
from digitlab.repro import atomic_write

START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass(frozen=True)
class Row:
    track: str
    label: str
    file: str  # relative to results/
    key: str  # dotted path into the JSON document
    fmt: str  # "pct", "float3", "int", "sec", "ms" or a str.format spec
    command: str


def _format(value, fmt: str) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    formats = {"pct": "{:.1%}", "pct2": "{:.2%}", "float3": "{:.3f}", "int": "{:,.0f}",
               "sec": "{:.1f} s", "ms": "{:.1f} ms"}
    return formats.get(fmt, fmt).format(value)


def lookup(document: dict, key: str):
    value = document
    for part in key.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def render(rows: list[Row], results: Path | None = None) -> str:
    """A Markdown table; a row whose file is missing says which command makes it."""
    results = results or paths.results_dir()
    lines = ["| track | result | value | source (regenerate with) |", "| --- | --- | --- | --- |"]
    cache: dict[str, dict | None] = {}
    for row in rows:
        if row.file not in cache:
            path = results / row.file
            cache[row.file] = json.loads(path.read_text()) if path.exists() else None
        document = cache[row.file]
        try:
            value = ("not run yet" if document is None
                     else _format(lookup(document, row.key), row.fmt))
        except (KeyError, IndexError, TypeError, ValueError):
            value = "missing"
        lines.append(f"| {row.track} | {row.label} | {value} | `results/{row.file}` "
                     f"(`{row.command}`) |")
    return "\n".join(lines) + "\n"


def update_readme(table: str, readme: Path) -> None:
    """Replace what stands between the results markers of ``readme``."""
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {START} ... {END} block")
    with atomic_write(readme) as handle:
        handle.write(pattern.sub(lambda _: f"{START}\n{table}{END}", text))


ROWS: list[Row] = [
    # Filled in per track: Row(track, label, file under results/, key path, format, command)
]
