"""`triage demo` tells a consistent story: counts that add up, Koreksi and Alihkan shown,
and a last digest that knows about Thursday's escalation."""

from __future__ import annotations

import html
import io
import re
import tempfile
from pathlib import Path

import pytest

from bot.demo.scenario import run_demo


@pytest.mark.slow  # the whole demo day with the default classifier: about a minute
async def test_the_demo_story_is_consistent() -> None:
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as workdir:
        summary = await run_demo(out, workdir=Path(workdir))
    text = out.getvalue()
    unit_tickets = summary["tickets"] - summary["spam"]
    assert f"{summary['messages']} pesan dibaca: {unit_tickets} tiket untuk unit" in text
    assert f"{summary['spam']} spam" in text
    last = html.unescape(re.sub(r"<[^>]+>", "", summary["digest"]))
    first = html.unescape(re.sub(r"<[^>]+>", "", summary["digest_tuesday"]))
    surge = summary["surge_tickets"]
    assert surge >= 30 and any("lonjakan" in line for line in summary["actions"])
    assert any("balasan terbit di Instagram" in line for line in summary["actions"])
    assert re.search(rf"Total\W+{unit_tickets + surge} baru", first), first  # Monday's tickets, spam apart
    assert "Lonjakan" in first  # the digest lists the day's surge
    assert any("Alihkan" in line for line in summary["actions"])
    assert any("Koreksi" in line for line in summary["actions"])
    # the story in order, and the last digest after the escalation says what is overdue
    order = [text.index(f"Jam dimajukan ke {day}") for day in ("Selasa", "Rabu", "Kamis", "Jumat")]
    assert order == sorted(order)
    assert re.search(r"Kamis 16:30 WIB: eskalasi ke pimpinan dan tim media untuk \d+ tiket", text), text
    assert "Lewat tenggat" in last and "Tidak ada tiket yang lewat tenggat" not in last
    assert "(Jumat 07:30 WIB, setelah eskalasi Kamis)" in text
