"""Labelled records in the LABELS.md JSON Lines format: load, check, merge, split.

Every problem is reported as `DatasetError` naming the file and the line, all
problems of a file at once.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from classifiers.base import CHANNELS, LABELS, LANGS


class DatasetError(ValueError):
    """A labelled file does not follow LABELS.md; the message lists every bad line."""


@dataclass(frozen=True)
class Record:
    id: str
    account: str
    channel: str
    text: str
    labels: tuple[str, ...]
    unit: str | None
    lang: str
    hard: bool = False
    source: str = ""  # file:line it came from

    def label_vector(self) -> list[int]:
        return [int(label in self.labels) for label in LABELS]


def _check(obj: object, where: str, units: dict[str, set[str]] | None) -> tuple[Record | None, list[str]]:
    errors: list[str] = []
    if not isinstance(obj, dict):
        return None, [f"{where}: expected a JSON object"]
    for key, kind in (("id", str), ("account", str), ("channel", str), ("text", str), ("labels", list)):
        if not isinstance(obj.get(key), kind):
            errors.append(f"{where}: field {key!r} missing or not a {kind.__name__}")
    if errors:
        return None, errors
    labels = obj["labels"]
    bad = [x for x in labels if x not in LABELS]
    if bad:
        errors.append(f"{where}: unknown label(s) {bad} (allowed: {list(LABELS)})")
    if len(set(labels)) != len(labels):
        errors.append(f"{where}: repeated label in {labels}")
    if "spam" in labels and len(labels) > 1:
        errors.append(f"{where}: 'spam' must stand alone, got {labels}")
    if obj["channel"] not in CHANNELS:
        errors.append(f"{where}: channel {obj['channel']!r} not in {list(CHANNELS)}")
    lang = obj.get("lang", "id")
    if lang not in LANGS:
        errors.append(f"{where}: lang {lang!r} not in {list(LANGS)}")
    unit = obj.get("unit")
    if unit is not None and not isinstance(unit, str):
        errors.append(f"{where}: unit must be a string or null")
    needs_unit = bool({"complaint", "question", "negative"} & set(labels)) and "spam" not in labels
    if needs_unit and unit is None:
        errors.append(f"{where}: labels {labels} need a unit")
    if not needs_unit and unit is not None:
        errors.append(f"{where}: labels {labels} take no unit, got {unit!r}")
    if units is not None and isinstance(unit, str):
        allowed = units.get(obj["account"])
        if allowed is None:
            errors.append(f"{where}: unknown account {obj['account']!r}")
        elif unit not in allowed:
            errors.append(f"{where}: unit {unit!r} is not a unit of {obj['account']!r}")
    if errors:
        return None, errors
    rec = Record(
        id=obj["id"],
        account=obj["account"],
        channel=obj["channel"],
        text=obj["text"],
        labels=tuple(x for x in LABELS if x in labels),
        unit=unit,
        lang=lang,
        hard=bool(obj.get("hard", False)),
        source=where,
    )
    return rec, []


def load_records(path: Path | str, *, units: dict[str, set[str]] | None = None) -> list[Record]:
    """All records of one file, or DatasetError listing every bad line (file:line: problem)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    records: list[Record] = []
    errors: list[str] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not valid JSON ({exc.msg})")
            continue
        rec, errs = _check(obj, where, units)
        errors.extend(errs)
        if rec is not None:
            records.append(rec)
    if errors:
        shown = errors[:50]
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise DatasetError(f"{len(errors)} problem(s):\n" + "\n".join(shown) + more)
    return records


def merge(files: Iterable[Path | str], feedback: Path | str | None = None, *, units: dict[str, set[str]] | None = None) -> list[Record]:
    """Records of all files, then the feedback file; a later record with the same id replaces the earlier one."""
    by_id: dict[str, Record] = {}
    errors: list[str] = []
    paths = [Path(f) for f in files] + ([Path(feedback)] if feedback is not None else [])
    for path in paths:
        if feedback is not None and path == Path(feedback) and not path.exists():
            continue  # no corrections yet
        try:
            recs = load_records(path, units=units)
        except DatasetError as exc:
            errors.append(str(exc))
            continue
        for rec in recs:
            by_id.pop(rec.id, None)  # keep the order of the latest version
            by_id[rec.id] = rec
    if errors:
        raise DatasetError("\n".join(errors))
    return list(by_id.values())


def split(records: Sequence[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """A deterministic split, stratified by label set, by account, with identical texts kept together."""
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(" ".join(rec.text.lower().split()), []).append(rec)
    strata: dict[tuple[str, tuple[str, ...]], list[list[Record]]] = {}
    for key in sorted(groups):
        g = groups[key]
        strata.setdefault((g[0].account, g[0].labels), []).append(g)
    rng = random.Random(seed)
    keep: list[Record] = []
    held: list[Record] = []
    for stratum in sorted(strata):
        gs = strata[stratum]
        rng.shuffle(gs)
        n_held = int(round(len(gs) * fraction))
        for i, g in enumerate(gs):
            (held if i < n_held else keep).extend(g)
    return keep, held


def write_records(records: Iterable[Record], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({"id": r.id, "account": r.account, "channel": r.channel, "text": r.text,
                                 "labels": list(r.labels), "unit": r.unit, "lang": r.lang, "hard": r.hard},
                                ensure_ascii=False) + "\n")
