"""`triage backup`: a consistent 0600 copy of the WAL database, taken while it is in use."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from bot.cli import main


def test_backup_copies_what_is_still_in_the_wal_and_keeps_it_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "triage.db"
    live = sqlite3.connect(db)
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("PRAGMA wal_autocheckpoint=0")  # everything below stays in triage.db-wal
    live.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, text TEXT)")
    with live:
        live.executemany("INSERT INTO tickets (text) VALUES (?)", [(f"tiket {i}",) for i in range(500)])
    assert (tmp_path / "triage.db-wal").stat().st_size > 0
    monkeypatch.setenv("TRIAGE_DB", str(db))
    old_umask = os.umask(0o022)  # a usual umask: files would be 0644 without care
    request_cleanup = lambda: os.umask(old_umask)  # noqa: E731
    out = tmp_path / "backups" / "copy.db"
    out.parent.mkdir()
    assert main(["backup", "--out", str(out)]) == 0  # while `live` still holds the database open
    assert "mode 0600" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(out.parent.glob("*.part")) and not list(out.parent.glob("*-wal"))
    copy = sqlite3.connect(out)
    assert copy.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 500
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    copy.close()
    # a folder as --out gets a dated file name
    assert main(["backup", "--out", str(out.parent)]) == 0
    dated = [p for p in out.parent.iterdir() if p.name.startswith("triage-")]
    assert len(dated) == 1 and stat.S_IMODE(dated[0].stat().st_mode) == 0o600
    live.close()
    request_cleanup()


def test_backup_of_a_missing_database_is_a_plain_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRIAGE_DB", str(tmp_path / "nope.db"))
    assert main(["backup", "--out", str(tmp_path / "b.db")]) == 2
    assert "no such database" in capsys.readouterr().err
