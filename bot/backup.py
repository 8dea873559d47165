"""`triage backup`: a consistent copy of the live SQLite store, safe to take while the bot runs.

SQLite's online backup API copies the database page by page under its own locks, so
the copy includes what is still in the WAL file and never a half-written transaction
(copying triage.db with cp while the bot writes can give a broken or stale copy). The
copy is one self-contained file (journal mode DELETE) readable by its owner only
(0600): it holds personal data and the refreshed Instagram tokens.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path


class BackupError(Exception):
    """The backup could not be made; the message says why."""


def backup_database(db_path: Path, out: Path, *, now: datetime | None = None) -> Path:
    """Copy db_path to out (a file, or a folder to put triage-YYYYMMDD-HHMMSS.db in); returns the file."""
    if not db_path.exists():
        raise BackupError(f"{db_path}: no such database (set TRIAGE_DB to the bot's database)")
    if out.is_dir():
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
        out = out / f"{db_path.stem}-{stamp}.db"
    if out.resolve() == db_path.resolve():
        raise BackupError(f"{out}: that is the database itself; write the backup elsewhere")
    partial = out.with_name(out.name + ".part")
    old_umask = os.umask(0o077)  # the copy, and any -wal/-shm file SQLite makes, readable by the owner only
    try:
        partial.unlink(missing_ok=True)
        source = sqlite3.connect(db_path, timeout=30)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            verdict = target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()
            source.close()
        if verdict != "ok":
            partial.unlink(missing_ok=True)
            raise BackupError(f"the copy failed SQLite's integrity check ({verdict}); nothing was written")
        os.chmod(partial, 0o600)
        os.replace(partial, out)  # a reader never sees a half-written backup under the final name
    except sqlite3.Error as err:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {db_path}: {err}") from None
    finally:
        os.umask(old_umask)
    return out
