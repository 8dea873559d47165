"""Figures for a classifier on a labelled set: per-label precision/recall/F1,
macro-F1 over the four labels, exact match, unit accuracy (None counts as a
unit: spam and unlabelled messages must go nowhere), the same on the `hard`
subset and per language, confusion counts and throughput.

`evaluate(records, predictions, seconds=...)` returns a plain dict (JSON-ready);
`format_report(report)` renders it as text.
"""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

from classifiers.base import LABELS, LANGS, Classifier, MessageIn, Prediction
from classifiers.dataset import Record


def _safe_div(a: float, b: float) -> float:
    return a / b if b else 0.0


def figures(gold_labels: Sequence[Sequence[str]], pred_labels: Sequence[Sequence[str]],
            gold_units: Sequence[str | None], pred_units: Sequence[str | None]) -> dict[str, Any]:
    """Per-label counts and scores, macro-F1, exact match and unit accuracy for one subset."""
    n = len(gold_labels)
    per_label: dict[str, dict[str, float]] = {}
    for label in LABELS:
        tp = fp = fn = tn = 0
        for g, p in zip(gold_labels, pred_labels):
            gi, pi = label in g, label in p
            tp += gi and pi
            fp += (not gi) and pi
            fn += gi and not pi
            tn += (not gi) and not pi
        prec = _safe_div(tp, tp + fp)
        rec = _safe_div(tp, tp + fn)
        f1 = _safe_div(2 * prec * rec, prec + rec)
        per_label[label] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn,
                            "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    exact = sum(set(g) == set(p) for g, p in zip(gold_labels, pred_labels))
    unit_ok = sum(g == p for g, p in zip(gold_units, pred_units))
    return {
        "n": n,
        "per_label": per_label,
        "macro_f1": sum(v["f1"] for v in per_label.values()) / len(LABELS),
        "exact_match": _safe_div(exact, n),
        "unit_accuracy": _safe_div(unit_ok, n),
    }


def evaluate(records: Sequence[Record], predictions: Sequence[Prediction], *, seconds: float | None = None) -> dict[str, Any]:
    if len(records) != len(predictions):
        raise ValueError(f"{len(records)} records but {len(predictions)} predictions")

    def subset(idx: list[int]) -> dict[str, Any]:
        return figures([records[i].labels for i in idx], [predictions[i].labels for i in idx],
                       [records[i].unit for i in idx], [predictions[i].unit for i in idx])

    all_idx = list(range(len(records)))
    report: dict[str, Any] = {"overall": subset(all_idx)}
    report["hard"] = subset([i for i in all_idx if records[i].hard])
    report["by_lang"] = {lang: subset(idx) for lang in LANGS
                         if (idx := [i for i in all_idx if records[i].lang == lang])}
    report["by_account"] = {acc: subset([i for i in all_idx if records[i].account == acc])
                            for acc in sorted({r.account for r in records})}
    report["language_accuracy"] = _safe_div(sum(r.lang == p.lang for r, p in zip(records, predictions)), len(records))
    confusion: dict[str, dict[str, int]] = {}
    for r, p in zip(records, predictions):
        if r.unit != p.unit:
            row = confusion.setdefault(f"{r.account}:{r.unit}", {})
            row[str(p.unit)] = row.get(str(p.unit), 0) + 1
    report["unit_confusion"] = dict(sorted(confusion.items()))
    sources: dict[str, int] = {}
    for p in predictions:
        sources[p.unit_source] = sources.get(p.unit_source, 0) + 1
    report["unit_sources"] = sources
    if seconds is not None:
        report["seconds"] = seconds
        report["messages_per_second"] = _safe_div(len(records), seconds)
    return report


def run(classifier: Classifier, records: Sequence[Record], batch_size: int = 64) -> dict[str, Any]:
    """Predict every record (in batches, timed) and evaluate."""
    msgs = [MessageIn(account=r.account, channel=r.channel, text=r.text) for r in records]
    start = time.perf_counter()
    preds: list[Prediction] = []
    for i in range(0, len(msgs), batch_size):
        preds.extend(classifier.predict(msgs[i:i + batch_size]))
    seconds = time.perf_counter() - start
    report = evaluate(records, preds, seconds=seconds)
    report["errors"] = [
        {"id": r.id, "hard": r.hard, "gold": list(r.labels), "pred": list(p.labels),
         "gold_unit": r.unit, "pred_unit": p.unit, "unit_source": p.unit_source}
        for r, p in zip(records, preds) if set(r.labels) != set(p.labels) or r.unit != p.unit
    ]
    return report


def _subset_lines(name: str, fig: dict[str, Any]) -> list[str]:
    lines = [f"{name} (n={fig['n']}): macro-F1 {fig['macro_f1']:.3f}  exact match {fig['exact_match']:.3f}  "
             f"unit accuracy {fig['unit_accuracy']:.3f}"]
    for label, v in fig["per_label"].items():
        lines.append(f"  {label:<10} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  "
                     f"support {v['support']:>4}  TP {v['tp']:>4} FP {v['fp']:>4} FN {v['fn']:>4} TN {v['tn']:>4}")
    return lines


def format_report(report: dict[str, Any]) -> str:
    lines = _subset_lines("all", report["overall"])
    if report["hard"]["n"]:
        lines += _subset_lines("hard", report["hard"])
    lines.append("by language:")
    for lang, fig in report["by_lang"].items():
        lines.append(f"  {lang:<6} n={fig['n']:>4}  macro-F1 {fig['macro_f1']:.3f}  exact {fig['exact_match']:.3f}  "
                     f"unit acc {fig['unit_accuracy']:.3f}")
    lines.append("by account:")
    for acc, fig in report.get("by_account", {}).items():
        lines.append(f"  {acc:<9} n={fig['n']:>4}  macro-F1 {fig['macro_f1']:.3f}  exact {fig['exact_match']:.3f}  "
                     f"unit acc {fig['unit_accuracy']:.3f}")
    lines.append(f"language accuracy {report.get('language_accuracy', 0):.3f}")
    lines.append(f"unit sources: {report.get('unit_sources', {})}")
    lines.append("unit confusion (gold -> predicted: count), errors only:")
    for gold, row in report["unit_confusion"].items():
        lines.append(f"  {gold:<22} -> " + ", ".join(f"{p}: {c}" for p, c in sorted(row.items(), key=lambda kv: -kv[1])))
    if "messages_per_second" in report:
        lines.append(f"throughput {report['messages_per_second']:.1f} messages/s ({report['seconds']:.2f} s)")
    return "\n".join(lines)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)
