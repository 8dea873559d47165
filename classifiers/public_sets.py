"""The real, permissively licensed data sets in `shared/data/public/`, mapped to our labels.

    for item in load_set("prdect_id", root, part="test"): ...
    report = score_sets(classifier, root)

Every set is split once, by a hash of its normalised text (so a repeated text
never sits on both sides), into a training part and a test part; nothing in
the test part is ever trained or tuned on. SmSA and EmoT keep their official
splits; judol is split by `load_judol` here, the split training uses.

Each row carries what our guide says about it, as far as the source tells:
`gold` maps a label to 1 or 0 where the source settles it, and leaves the
label out where it does not (a product review says nothing about `question`;
a positive tweet is surely not `negative`). Scores are rates per *group*
(e.g. "prdect_id positive reviews"), since most of these sets only cover one
side of a label.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from classifiers.base import LABELS, Classifier, MessageIn
from classifiers.normalize import normalize

if TYPE_CHECKING:
    import numpy as np

TEST_SHARE = 30  # percent of each hash-split set held out for measuring
JUDOL_SEED = 13  # the seed training splits judol with


@dataclass(frozen=True)
class PublicItem:
    text: str
    group: str  # e.g. "idsmsa_stock/neutral"
    gold: Mapping[str, int] = field(default_factory=dict)  # label -> 0/1 where the source settles it
    unit: str | None = None  # where the source settles the unit (kemendag)


def in_test_part(text: str) -> bool:
    """Deterministic, text-keyed split: the same text is always on the same side."""
    digest = hashlib.sha1(normalize(text).encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < TEST_SHARE


def _hash_split(rows: Iterable[PublicItem], part: str) -> list[PublicItem]:
    seen: set[str] = set()
    out = []
    for item in rows:
        key = normalize(item.text)
        if not key or key in seen:
            continue
        seen.add(key)
        if (part == "test") == in_test_part(item.text):
            out.append(item)
    return out


NONE = {label: 0 for label in LABELS}


def _idsmsa(root: Path) -> Iterable[PublicItem]:
    """Tweets about listed companies. Neutral and positive ones carry none of our labels; the
    negative ones are negative *news* mostly, not our `negative`, so they settle nothing."""
    with open(root / "idsmsa_stock" / "idsmsa.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = (row.get("label") or "").strip().lower()
            if label in ("neutral", "positive"):
                yield PublicItem(row["text"], f"idsmsa_stock/{label}", NONE)


def _prdect(root: Path) -> Iterable[PublicItem]:
    """Product reviews. Positive: none of our labels. Negative: a consumer complaint (pktn);
    `negative` only for anger (sadness and fear are calm or unsettled, SOURCE.md)."""
    with open(root / "prdect_id" / "prdect_id.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            sentiment = (row.get("sentiment") or "").strip().lower()
            emotion = (row.get("emotion") or "").strip().lower()
            if sentiment == "positive":
                yield PublicItem(row["text"], "prdect_id/positive", NONE)
            elif sentiment == "negative":
                gold = {"complaint": 1, "spam": 0}
                if emotion == "anger":
                    gold["negative"] = 1
                yield PublicItem(row["text"], "prdect_id/negative", gold, unit="pktn")


def _smsa(root: Path, part: str) -> Iterable[PublicItem]:
    name = {"train": "train", "valid": "valid", "test": "test"}[part]
    with open(root / "indonlu_smsa" / f"{name}_preprocess.tsv", encoding="utf-8") as fh:
        for line in fh:
            if "\t" not in line:
                continue
            text, label = line.rstrip("\n").rsplit("\t", 1)
            label = label.strip()
            gold = {"negative": 1} if label == "negative" else {"negative": 0, "spam": 0}
            yield PublicItem(text, f"smsa/{label}", gold)


def _emot(root: Path, part: str) -> Iterable[PublicItem]:
    name = {"train": "train", "valid": "valid", "test": "test"}[part]
    with open(root / "indonlu_emot" / f"{name}_preprocess.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            emotion = (row.get("label") or "").strip().lower()
            gold = {"negative": 0, "spam": 0} if emotion in ("happy", "love") else {"spam": 0}
            yield PublicItem(row["tweet"], f"emot/{emotion}", gold)


# sensi keeps its sources' placeholders; written out so the normaliser sees a mention, a name, a link.
SENSI_PLACEHOLDERS = {"<USERNAME>": "@user", "<PROVIDER_NAME>": "provider", "<URL>": "https://t.co/x"}


def _sensi(root: Path) -> Iterable[PublicItem]:
    """Comments and tweets (Instagram cyberbullying, telco and TV-show tweets) marked positive or
    negative: negative ones are insults, contempt and frustration, i.e. our `negative`; positive
    ones are not `negative`. Neither settles complaint or question."""
    with open(root / "sensi_sentiment" / "sensi_training_dedup.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = row.get("text") or ""
            for tag, word in SENSI_PLACEHOLDERS.items():
                text = text.replace(tag, word)
            if (row.get("label") or "").strip() == "0":
                yield PublicItem(text, "sensi/negative", {"negative": 1, "spam": 0})
            elif (row.get("label") or "").strip() == "1":
                yield PublicItem(text, "sensi/positive", {"negative": 0, "spam": 0})


def load_judol(path: Path, seed: int, test_fraction: float = 0.2) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """The judol comments as (train texts, labels, test texts, labels), split by distinct normalised text."""
    import numpy as np  # here: the rest of this module needs no numpy

    groups: dict[str, list[tuple[str, int]]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = row.get("comment_text") or ""
            label = int(row.get("label") or 0)
            key = normalize(text)
            if key:
                groups.setdefault(key, []).append((text, label))
    keys = sorted(groups)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    n_test = int(len(keys) * test_fraction)
    test_keys = {keys[i] for i in order[:n_test]}
    tr_t, tr_y, te_t, te_y = [], [], [], []
    for key in keys:
        rows = groups[key]
        label = int(round(sum(lab for _, lab in rows) / len(rows) + 1e-9))
        text = rows[0][0]  # one copy per distinct text: campaigns repeat
        if key in test_keys:
            te_t.append(text)
            te_y.append(label)
        else:
            tr_t.append(text)
            tr_y.append(label)
    return tr_t, np.array(tr_y), te_t, np.array(te_y)


def _judol(root: Path, part: str) -> Iterable[PublicItem]:
    tr_t, tr_y, te_t, te_y = load_judol(root / "judol_youtube" / "dataset_judol_labelled.csv", JUDOL_SEED)
    texts, ys = (te_t, te_y) if part == "test" else (tr_t, tr_y)
    for text, y in zip(texts, ys):
        if int(y):
            yield PublicItem(text, "judol_youtube/spam", {"spam": 1})
        else:
            yield PublicItem(text, "judol_youtube/other", {"spam": 0})


def load_set(name: str, root: Path, part: str = "test") -> list[PublicItem]:
    """One set's items for `part` ("train" or "test"; SmSA and EmoT also "valid")."""
    root = Path(root)
    if part not in ("train", "valid", "test"):
        raise ValueError(f"unknown part {part!r}: expected train, valid or test")
    if name == "idsmsa_stock":
        return _hash_split(_idsmsa(root), part)
    if name == "prdect_id":
        return _hash_split(_prdect(root), part)
    if name == "smsa":
        return list(_smsa(root, part))
    if name == "emot":
        return list(_emot(root, part))
    if name == "judol_youtube":
        return list(_judol(root, part))
    if name == "sensi":
        return _hash_split(_sensi(root), part)
    raise ValueError(f"unknown public set {name!r}; known: {', '.join(SETS)}")


SETS = ("idsmsa_stock", "prdect_id", "smsa", "emot", "judol_youtube", "sensi")

# Targets of issue 12: (group, label, "max" rate of that label, or "min" recall).
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("idsmsa_stock/neutral+positive", "spam", "max", 0.03),
    ("idsmsa_stock/neutral+positive", "negative", "max", 0.08),
    ("idsmsa_stock/neutral+positive", "complaint", "max", 0.05),
    ("prdect_id/positive", "negative", "max", 0.08),
    ("prdect_id/positive", "spam", "max", 0.02),
    ("prdect_id/positive", "complaint", "max", 0.05),
    ("prdect_id/negative", "complaint", "min", 0.75),
    ("smsa/neutral+positive", "negative", "max", 0.08),
    ("judol_youtube/other", "spam", "max", 0.02),
    ("judol_youtube/spam", "spam", "min", 0.95),
)

# Groups scored together: the targets speak of "neutral and positive" as one group.
MERGED = {"idsmsa_stock/neutral": "idsmsa_stock/neutral+positive",
          "idsmsa_stock/positive": "idsmsa_stock/neutral+positive",
          "smsa/neutral": "smsa/neutral+positive", "smsa/positive": "smsa/neutral+positive"}


def available(root: Path) -> list[str]:
    """The sets whose files are present under root."""
    files = {"idsmsa_stock": "idsmsa_stock/idsmsa.csv", "prdect_id": "prdect_id/prdect_id.csv",
             "smsa": "indonlu_smsa/test_preprocess.tsv", "emot": "indonlu_emot/test_preprocess.csv",
             "judol_youtube": "judol_youtube/dataset_judol_labelled.csv",
             "sensi": "sensi_sentiment/sensi_training_dedup.csv"}
    return [name for name in SETS if (Path(root) / files[name]).exists()]


def rates(items: Sequence[PublicItem], predicted: Sequence[Sequence[str]],
          units: Sequence[str | None] | None = None) -> dict[str, dict[str, Any]]:
    """Per group: n, and per label the share of items predicted with it (and, where the source
    settles the label, precision-free agreement: the share of items where we agree with it)."""
    out: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.group, []).append(i)
        merged = MERGED.get(item.group)
        if merged:
            groups.setdefault(merged, []).append(i)
    for group, idx in sorted(groups.items()):
        fig: dict[str, Any] = {"n": len(idx)}
        for label in LABELS:
            fig[label] = round(sum(label in predicted[i] for i in idx) / len(idx), 4)
        if units is not None:
            with_unit = [i for i in idx if items[i].unit]
            if with_unit:
                fig["unit_accuracy"] = round(sum(units[i] == items[i].unit for i in with_unit) / len(with_unit), 4)
        out[group] = fig
    return out


def check_targets(figures: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it is met (None where the set is absent)."""
    rows = []
    for group, label, kind, bound in TARGETS:
        got = figures.get(group, {}).get(label)
        met = None if got is None else (got <= bound if kind == "max" else got >= bound)
        rows.append({"group": group, "label": label, "kind": kind, "bound": bound, "measured": got, "met": met})
    return rows


def score_sets(classifier: Classifier, root: Path, *, names: Sequence[str] | None = None,
               account: str = "kemendag", limit: int | None = None, batch_size: int = 64,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Classify the test part of every available set as `account` comments; rates per group
    and the issue-12 targets."""
    names = list(names) if names else available(root)
    items: list[PublicItem] = []
    for name in names:
        got = load_set(name, root, "test")
        items.extend(got[:limit] if limit else got)
    labels: list[tuple[str, ...]] = []
    units: list[str | None] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        preds = classifier.predict([MessageIn(account, "comment", it.text) for it in chunk])
        labels.extend(tuple(p.labels) for p in preds)
        units.extend(p.unit for p in preds)
        if progress:
            progress(f"{start + len(chunk)}/{len(items)}")
    figures = rates(items, labels, units)
    return {"sets": names, "account": account, "figures": figures, "targets": check_targets(figures)}


def format_scores(report: Mapping[str, Any]) -> str:
    lines = [f"real sets, test parts, as {report['account']} comments"]
    lines.append(f"{'group':34} {'n':>6} " + " ".join(f"{lab:>9}" for lab in LABELS) + "  unit acc.")
    for group, fig in report["figures"].items():
        unit = f"{fig['unit_accuracy']:.3f}" if "unit_accuracy" in fig else ""
        lines.append(f"{group:34} {fig['n']:>6} " + " ".join(f"{fig[lab]:>9.3f}" for lab in LABELS) + f"  {unit}")
    lines.append("targets:")
    for row in report["targets"]:
        sign = "<=" if row["kind"] == "max" else ">="
        got = "absent" if row["measured"] is None else f"{row['measured']:.3f}"
        mark = {True: "met", False: "NOT MET", None: ""}[row["met"]]
        lines.append(f"  {row['group']:32} {row['label']:9} {sign} {row['bound']:.2f}: {got} {mark}")
    return "\n".join(lines)
