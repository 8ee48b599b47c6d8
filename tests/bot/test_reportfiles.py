"""The report's files: where they go, what they hold, and that each is written whole."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import replace

import pytest

from bot import reportfiles
from bot.reportfiles import render_chart, report_html, write_report_files
from consensus.report import ActionLine, DecisionLine, Flag, ModLine
from tests.commands.test_report_render import EVIL, ROOM, make_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_files_are_written_per_room_and_day(tmp_path):
    report = make_report(decisions=(DecisionLine(1, "proposal", EVIL, True, None, {}),))
    files = write_report_files(report, tmp_path)
    folder = tmp_path / "%21room%3Aexample.org"
    assert files.markdown == folder / "2025-11-26.md"
    assert files.html == folder / "2025-11-26.html"
    assert files.json == folder / "2025-11-26.json"
    assert files.png == folder / "2025-11-26.png"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in (files.markdown, files.html, files.json, files.png)
    )  # and no temporary file left behind
    assert png_size(files.png.read_bytes()) == (800, 300)
    assert json.loads(files.json.read_text(encoding="utf-8"))["room"] == ROOM
    md = files.markdown.read_text(encoding="utf-8")
    assert md.startswith("# Daily report for 2025-11-26 (Europe/Berlin)")


def test_the_page_escapes_user_text_and_shows_the_chart(tmp_path):
    report = make_report(
        room='!r"<b>:example.org',
        actions=(ActionLine(2, EVIL, "open", 3, 1, 0),),
        moderation=(ModLine(3, "mod.void", "@m:x", 1, "</li><script>x()</script>"),),
    )
    page = write_report_files(report, tmp_path).html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<img src="2025-11-26.png"' in page
    assert "#2 “&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x" in page
    assert "&lt;/li&gt;&lt;script&gt;x()&lt;/script&gt;" in page
    assert "<script" not in page and "<img src=x" not in page
    # The room ID is escaped by the template itself.
    assert "<code>!r&#34;&lt;b&gt;:example.org</code>" in page
    # Standalone: no external assets, no scripts allowed at all.
    assert "default-src 'none'" in page
    assert "http://" not in page and "<link" not in page


def test_the_page_lists_sections_whole_ids_and_hours():
    report = make_report(day="2025-10-26")
    page = report_html(report, chart="2025-10-26.png")
    assert "<h1>Daily report for 2025-10-26 (Europe/Berlin)</h1>" in page
    assert "<h2>Flags for moderators" in page
    assert '<a href="https://matrix.to/#/@alice:example.org">@alice:example.org</a> 5' in page
    assert "<p><b>Opted out:</b> 3 members</p>" in page
    assert "<p><b>Reports not yet reviewed:</b> 2025-11-24, 2025-11-25</p>" in page
    assert page.count("<tr><td>") == 25 and "<tr><td>02:00\u2032</td>" in page
    assert "Flags" not in report_html(report, include_flags=False, chart="x.png")


def test_without_flags_no_file_holds_them(tmp_path):
    report = make_report(flags=(Flag("spike", (), "a secret-ish spike of 40 kudos"),))
    files = write_report_files(report, tmp_path, include_flags=False)
    for path in (files.markdown, files.html, files.json):
        assert "spike" not in path.read_text(encoding="utf-8")
    assert "flags" not in json.loads(files.json.read_text(encoding="utf-8"))


@pytest.mark.parametrize("day", ["2025-03-30", "2025-10-26", "2025-11-26"])
def test_chart_is_a_small_png_on_any_day(day):
    report = make_report(day=day)
    data = render_chart(report)
    assert png_size(data) == (800, 300)
    assert len(data) < 100_000
    # No version stamp or date: the same report draws the same bytes.
    assert data == render_chart(report)


def test_chart_of_an_empty_day_and_a_dollar_in_the_room_id():
    report = make_report(room="!a$b$c:example.org", hourly=(0,) * 24, entries=0)
    assert png_size(render_chart(report)) == (800, 300)


def test_chart_differs_with_the_data():
    report = make_report()
    busier = replace(report, hourly=tuple(n + 10 for n in report.hourly))
    assert render_chart(report) != render_chart(busier)


@pytest.mark.parametrize("day", ["../x", "2025-11-26/../../y", "", "2025-1-1"])
def test_a_day_that_is_not_a_date_is_refused(tmp_path, day):
    with pytest.raises(ValueError, match="not a day"):
        write_report_files(replace(make_report(), day=day), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    files = write_report_files(make_report(), tmp_path)
    before = files.png.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(reportfiles.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report_files(replace(make_report(), entries=99), tmp_path)
    monkeypatch.undo()
    assert files.png.read_bytes() == before
    assert not [p for p in files.json.parent.iterdir() if p.name.startswith(".")]


def test_files_are_readable_by_others(tmp_path):
    files = write_report_files(make_report(), tmp_path)
    assert os.stat(files.html).st_mode & 0o777 == 0o644
