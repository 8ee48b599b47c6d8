"""The daily report's files in the data folder: Markdown, a standalone HTML page, JSON and a PNG
chart of the day's activity per local hour.

Each file is written whole or not at all (a temporary file, then `os.replace`), so a crash never
leaves half a report for a watchdog to read. The page has no external assets and no scripts; its
template escapes every value, and the only HTML it takes as is comes from the fragment renderer,
which escapes user text itself. This is blocking file and CPU work: call it from a thread.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from commands.render import to_html
from commands.report_render import (
    hour_labels,
    report_json,
    report_markdown,
    report_sections,
    summary,
    title,
)
from consensus.report import Report

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CHART_SIZE_INCHES = (8.0, 3.0)
CHART_DPI = 100  # 800 x 300 pixels

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · {{ room }}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 0.3rem; border-bottom: 1px solid #ddd; }
code { font-size: 0.85em; background: #f3f3f3; padding: 0 0.2em; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
ul { padding-left: 1.3rem; }
table { border-collapse: collapse; }
td, th { padding: 0.1rem 0.8rem; text-align: right; border-bottom: 1px solid #eee; }
.room { color: #555; }
@media (prefers-color-scheme: dark) {
  body { color: #e8e8e8; background: #161616; } code { background: #2a2a2a; }
  .room { color: #aaa; }
}
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="room">Room <code>{{ room }}</code>. {{ summary }}</p>
<p><img src="{{ chart }}" alt="Ledger entries per local hour on {{ day }}"
        width="800" height="300"></p>
{% for section in sections %}
{% if section.inline %}
<p><b>{{ section.heading }}:</b> {{ section.entries | join(", ") or "none" }}</p>
{% else %}
<h2>{{ section.heading }}</h2>
<ul>
{% for item in section.entries %}  <li>{{ item }}</li>
{% endfor %}</ul>
{% endif %}
{% endfor %}
<details>
<summary>Entries per hour</summary>
<table>
<tr><th>hour</th><th>entries</th></tr>
{% for label, count in hours %}<tr><td>{{ label }}</td><td>{{ count }}</td></tr>
{% endfor %}</table>
</details>
</body>
</html>
"""

_ENV = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_TEMPLATE = _ENV.from_string(_PAGE)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    json: Path
    png: Path


def report_html(report: Report, *, include_flags: bool = True, chart: str) -> str:
    """The standalone page; `chart` is the chart image's address relative to the page."""
    sections = [
        {
            "heading": s.heading,
            "inline": s.inline or not s.items,
            # The fragment renderer has escaped the user text inside; nothing else is trusted.
            "entries": [Markup(to_html(item)) for item in s.items],  # noqa: S704
        }
        for s in report_sections(report, include_flags=include_flags, quiet=False)
    ]
    return _TEMPLATE.render(
        title=title(report),
        room=report.room,
        day=report.day,
        summary=summary(report),
        chart=chart,
        sections=sections,
        hours=list(zip(hour_labels(report), report.hourly, strict=True)),
    )


def render_chart(report: Report) -> bytes:
    """A PNG bar chart (800 x 300) of the ledger entries per local hour of the report's day."""
    # Imported here: matplotlib takes a moment to load and only the report needs it. The object
    # API with the Agg canvas never touches pyplot's global state or a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = hour_labels(report)
    ax.bar(range(len(report.hourly)), report.hourly, color="#3b7dd8", width=0.8)
    ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=90)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylim(0, max((*report.hourly, 1)) * 1.1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("ledger entries", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    # parse_math off: a "$" in a room ID must not be read as TeX.
    ax.set_title(
        f"{report.room} · {report.day} ({report.timezone}), per local hour",
        fontsize=9,
        parse_math=False,
    )
    out = io.BytesIO()
    # No "Software" stamp: the same report gives the same bytes.
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def room_folder(folder: Path, room: str) -> Path:
    """The room's folder: its ID percent-encoded, so no ID can name a path outside `folder`."""
    return folder / quote(room, safe="")


def write_report_files(report: Report, folder: Path, *, include_flags: bool = True) -> ReportFiles:
    """Write `<folder>/<room>/<day>.{md,html,json,png}`, each atomically; return their paths."""
    if _DAY.fullmatch(report.day) is None:
        raise ValueError(f"not a day: {report.day!r}")
    target = room_folder(folder, report.room)
    target.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        markdown=target / f"{report.day}.md",
        html=target / f"{report.day}.html",
        json=target / f"{report.day}.json",
        png=target / f"{report.day}.png",
    )
    # The chart first: a page is never there before the image it shows.
    _write_atomic(files.png, render_chart(report))
    _write_atomic(files.json, report_json(report, include_flags=include_flags).encode())
    _write_atomic(files.markdown, report_markdown(report, include_flags=include_flags).encode())
    page = report_html(report, include_flags=include_flags, chart=files.png.name)
    _write_atomic(files.html, page.encode())
    return files


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private; a report is public, for any reader of the folder.
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
