"""Plain functions behind the `triage classify`, `triage eval` and `triage train` commands.

They take and return our own types; bot/cli.py only parses arguments and prints.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from classifiers.base import AccountRules, Classifier, MessageIn, Prediction

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRAIN_DIR = Path(__file__).parent / "data" / "train"
DEFAULT_MODEL_DIR = Path(__file__).parent / "model"
MODEL_CARD = Path(__file__).parent / "MODEL_CARD.md"
BATCH = 32


# ---------------------------------------------------------------- classify

def prediction_record(msg_id: Any, pred: Prediction) -> dict[str, Any]:
    return {"id": msg_id, "labels": list(pred.labels),
            "scores": {k: round(float(v), 4) for k, v in pred.scores.items()},
            "unit": pred.unit, "unit_source": pred.unit_source, "lang": pred.lang}


def repair_text(text: str) -> str:
    """Lone surrogates (half an emoji, valid in JSON, not in UTF-8) become U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def safe_id(value: Any) -> Any:
    """An input line's id as it can be echoed in valid JSON on a strict UTF-8 stream."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else json.dumps(value)  # "NaN", "Infinity"
    if isinstance(value, str):
        return repair_text(value)
    return repair_text(json.dumps(value, ensure_ascii=False))[:200]


def _parse_line(line: str, line_no: int) -> tuple[Any, MessageIn | None, str | None]:
    """(id, message or None, error or None) for one input line."""
    if any("\udc80" <= ch <= "\udcff" for ch in line):  # bytes that were not UTF-8 (surrogateescape)
        msg_id, _, _ = _parse_line(repair_text(line), line_no)
        return msg_id, None, f"line {line_no}: not valid UTF-8"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, None, f"line {line_no}: not valid JSON ({exc.msg})"
    except RecursionError:
        return None, None, f"line {line_no}: JSON nested too deeply"
    if not isinstance(obj, dict):
        return None, None, f"line {line_no}: expected a JSON object"
    msg_id = safe_id(obj.get("id"))
    problems = []
    text = obj.get("text")
    if not isinstance(text, str):
        problems.append("'text' missing or not a string")
    account = obj.get("account")
    if not isinstance(account, str) or not account:
        problems.append("'account' missing or not a string")
    channel = obj.get("channel", "comment")
    if channel not in ("comment", "dm"):
        problems.append("'channel' must be 'comment' or 'dm'")
    if problems:
        return msg_id, None, f"line {line_no}: " + "; ".join(problems)
    return msg_id, MessageIn(account=str(account), channel=str(channel), text=str(text)), None


def classify_stream(in_stream: IO[str], out_stream: IO[str], classifier: Classifier, *,
                    err_stream: IO[str] | None = None, batch_size: int = BATCH,
                    accounts: Sequence[str] | None = None) -> int:
    """JSON Lines in (id, account, channel, text) -> JSON Lines out (id, labels, scores, unit, lang).

    A bad line gives {"id": ..., "line": n, "error": "..."} on out_stream and a message on
    err_stream, and the stream goes on; with `accounts`, an account not among them is a bad
    line (it has no units to route to). Returns 0, or 1 if any line was bad.
    """
    err = err_stream if err_stream is not None else sys.stderr
    bad = 0
    pending: list[tuple[Any, int, MessageIn]] = []

    def flush() -> None:
        nonlocal bad
        if not pending:
            return
        try:
            preds = classifier.predict([m for _, _, m in pending])
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the stream: retry one by one
            preds = []
            for msg_id, line_no, msg in pending:
                try:
                    preds.append(classifier.predict([msg])[0])
                except Exception as exc1:  # noqa: BLE001
                    bad += 1
                    print(f"line {line_no}: classifier failed: {exc1!r}", file=err)
                    preds.append(None)  # type: ignore[arg-type]
            del exc
        for (msg_id, line_no, _), pred in zip(pending, preds):
            if pred is None:
                out_stream.write(json.dumps({"id": msg_id, "line": line_no, "error": "classifier failed"}) + "\n")
            else:
                out_stream.write(json.dumps(prediction_record(msg_id, pred), ensure_ascii=False) + "\n")
        out_stream.flush()
        pending.clear()

    for line_no, line in enumerate(in_stream, 1):
        if not line.strip():
            continue
        try:
            msg_id, msg, problem = _parse_line(line, line_no)
        except Exception as exc:  # noqa: BLE001 - one line we did not foresee must not stop the stream
            msg_id, msg, problem = None, None, f"line {line_no}: unreadable ({type(exc).__name__})"
        if msg is not None and accounts is not None and msg.account not in accounts:
            problem = repair_text(f"line {line_no}: unknown account '{msg.account}'; "
                                  f"routing.yaml has: {', '.join(accounts)}")
            msg = None
        if msg is None:
            flush()  # keep the output in input order
            bad += 1
            print(problem, file=err)
            out_stream.write(json.dumps({"id": msg_id, "line": line_no, "error": problem}, ensure_ascii=False) + "\n")
            out_stream.flush()
            continue
        pending.append((msg_id, line_no, msg))
        if len(pending) >= batch_size:
            flush()
    flush()
    return 1 if bad else 0


# ---------------------------------------------------------------- evaluate

@dataclass(frozen=True)
class EvalReport:
    """Figures (JSON-ready dict) and their text rendering."""

    data: Mapping[str, Any]
    text: str

    def __str__(self) -> str:
        return self.text

    def to_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, indent=2)


def evaluate_file(path: Path | str, classifier: Classifier) -> EvalReport:
    """Predict every record of a labelled JSON Lines file and report the figures."""
    from classifiers import evaluate
    from classifiers.dataset import load_records

    records = load_records(path)
    data = evaluate.run(classifier, records)
    return EvalReport(data=data, text=evaluate.format_report(data))


# ---------------------------------------------------------------- train

def train(train_files: Sequence[Path] | None = None, out_dir: Path | None = None, *,
          rules: Mapping[str, AccountRules],
          feedback: Path | None = None, judol: Path | None = None, smsa: Path | None = None,
          eval_file: Path | None = None, seed: int = 13, epochs: int = 4, skip_transformer: bool = False,
          model_card: Path | None = None,
          quantize: bool | None = None, sentiment_weight: float | None = None,
          sentiment_rows: int | None = None, public: Path | None = None,
          reuse_transformer: Path | None = None, transformer_seen: frozenset[str] = frozenset(),
          overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train every part, write the artifacts to out_dir (default classifiers/model) and the model card.

    rules: the routing rules per account (the caller reads routing.yaml; classifiers never does);
    judol: dataset_judol_labelled.csv (extra spam data, and its held-out part measures spam F1);
    smsa: the indonlu_smsa folder (its test split measures negative F1; with sentiment_weight > 0
    a sample of its train split is also weak `negative` training data);
    eval_file: labelled file measured after training, never trained or tuned on;
    public: shared/data/public (the training parts of its real sets join training, their test
    parts are measured for the model card);
    reuse_transformer: a fine-tuned transformer folder to keep instead of training one; the
    records it learnt are kept out of the held-out tuning: `transformer_seen` (their
    training.text_fingerprint values), or by default the folder's trained_on.txt;
    overrides: further TrainOptions fields by name (for experiments: public_sets, oof_repeats, ...).
    """
    from classifiers.dataset import load_records, merge
    from classifiers.training import TrainOptions, train_all

    files = list(train_files) if train_files else sorted(DEFAULT_TRAIN_DIR.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no training files given and none in {DEFAULT_TRAIN_DIR}")
    out = Path(out_dir) if out_dir is not None else DEFAULT_MODEL_DIR
    units = {acc: set(r.unit_keys) for acc, r in rules.items()}
    records = merge(files, feedback, units=units)
    eval_records = load_records(eval_file) if eval_file is not None else None
    if eval_records:
        seen = {" ".join(r.text.lower().split()) for r in records}
        overlap = sum(" ".join(r.text.lower().split()) in seen for r in eval_records)
    else:
        overlap = 0
    options = TrainOptions(seed=seed, epochs=epochs, skip_transformer=skip_transformer, quantize=quantize)
    if sentiment_weight is not None:
        options.sentiment_weight = sentiment_weight
    if sentiment_rows is not None:
        options.sentiment_rows = sentiment_rows
    options.reuse_transformer, options.transformer_seen = reuse_transformer, transformer_seen
    for name, value in (overrides or {}).items():
        if not hasattr(options, name):
            raise ValueError(f"unknown training option {name!r}")
        setattr(options, name, value)
    t0 = time.perf_counter()
    report = train_all(records, out, rules=rules, judol=judol, smsa=smsa, eval_records=eval_records,
                       public=public, options=options)
    report["files"] = [_shown(f) for f in files] + ([_shown(feedback)] if feedback else [])
    report["eval_file"] = _shown(eval_file) if eval_file else None
    report["eval_overlap_with_training"] = overlap
    report["total_seconds"] = time.perf_counter() - t0
    (out / "training_report.json").write_text(json.dumps(_slim(report), indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    write_model_card(report, model_card or MODEL_CARD)
    return report


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the project when inside it."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return Path(path).name


def _slim(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without per-record error lists (they name evaluation ids only, but are long)."""
    out = dict(report)
    alts = {}
    for name, rep in report.get("alternatives", {}).items():
        alts[name] = {k: v for k, v in rep.items() if k != "errors"}
    out["alternatives"] = alts
    return out


# ---------------------------------------------------------------- model card

CARD_START = "<!-- figures:start (written by `triage train`; edit outside these markers) -->"
CARD_END = "<!-- figures:end -->"


def _fig_row(name: str, fig: Mapping[str, Any]) -> str:
    pl = fig["per_label"]
    return (f"| {name} | {fig['macro_f1']:.3f} | " + " | ".join(f"{pl[label]['f1']:.3f}" for label in pl)
            + f" | {fig['exact_match']:.3f} | {fig['unit_accuracy']:.3f} |")


def render_figures(report: Mapping[str, Any]) -> str:
    lines = [f"Trained on {report.get('n_train')} records ({', '.join(Path(f).name for f in report.get('files', []))}), "
             f"seed {report.get('seed')}; thresholds and choices tuned on {report.get('n_held')} held-out training "
             f"records (and 5-fold out-of-fold scores for the n-gram backend). Evaluated on "
             f"`{Path(str(report.get('eval_file'))).name}` ({report.get('eval_overlap_with_training', 0)} texts "
             "also in the training data).", ""]
    alts = report.get("alternatives", {})
    if alts:
        header = "| backend | macro-F1 | complaint F1 | question F1 | negative F1 | spam F1 | exact match | unit accuracy |"
        sep = "|---|---|---|---|---|---|---|---|"
        lines += ["All evaluation records:", "", header, sep]
        lines += [_fig_row(name, rep["overall"]) for name, rep in alts.items()]
        lines += ["", "Hard cases only:", "", header, sep]
        lines += [_fig_row(name, rep["hard"]) for name, rep in alts.items()]
        lines += ["", "Per language (macro-F1 / unit accuracy):", "",
                  "| backend | " + " | ".join(next(iter(alts.values()))["by_lang"]) + " |",
                  "|---|" + "---|" * len(next(iter(alts.values()))["by_lang"])]
        for name, rep in alts.items():
            lines.append(f"| {name} | " + " | ".join(f"{f['macro_f1']:.3f} / {f['unit_accuracy']:.3f} (n={f['n']})"
                                                    for f in rep["by_lang"].values()) + " |")
        lines += ["", "| backend | language accuracy | throughput (eval run, messages/s) | unit sources |", "|---|---|---|---|"]
        for name, rep in alts.items():
            lines.append(f"| {name} | {rep.get('language_accuracy', 0):.3f} | {rep.get('messages_per_second', 0):.1f} | "
                         f"{rep.get('unit_sources', {})} |")
    if "judol_test" in report:
        j = report["judol_test"]
        lines += ["", f"Spam model on the held-out judol comments (split by distinct normalised text, n={j['n']}, "
                  f"{j['positives']} gambling promotions): F1 {j['f1']:.3f}, precision {j['precision']:.3f}, "
                  f"recall {j['recall']:.3f}."]
    if "smsa_test" in report:
        s = report["smsa_test"]
        lines += ["", "SmSA test split (n={}), SmSA 'negative' vs our `negative` label: ".format(s["n"])
                  + ", ".join(f"{k.replace('_negative_f1', '')} F1 {v:.3f}" for k, v in s.items() if k != "n") + "."]
    if report.get("public_test"):
        lines += ["", *render_public(report["public_test"])]
    lines += ["", "Tuning on held-out training data:", "",
              f"- n-gram out-of-fold macro-F1: {report.get('ngram_oof_macro_f1', 0):.3f}"]
    if "ensemble" in report:
        e = report["ensemble"]
        lines.append(f"- ensemble transformer weight {e['w_transformer']} (held-out macro-F1 {e['held_out_macro_f1']:.3f}; "
                     f"transformer alone {report.get('transformer_only_held_out_macro_f1', 0):.3f})")
    lines.append(f"- unit accuracy on held-out complaint/question records by unit model: "
                 f"{ {k: round(v, 3) for k, v in report.get('unit_held_out_accuracy', {}).items()} }")
    if "unit_outrank" in report:
        o = report["unit_outrank"]
        lines.append(f"- a higher-priority unit outranks a keyword at unit-model probability {o['chosen']} "
                     f"(held-out unit accuracy by level: { {k: round(v, 3) for k, v in o['table'].items()} })")
    if "cascade" in report:
        c = report["cascade"]
        lines.append(f"- cascade: {c.get('rule', 'absolute')} margin {c['margin']} "
                     f"(by rule and margin: {c['table']})")
    if "unit_floor" in report:
        f = report["unit_floor"]
        lines.append(f"- below unit-model probability {f['chosen']} (and with no keyword) a ticket goes to the "
                     f"account's default unit (held-out unit accuracy by floor: "
                     f"{ {k: round(v, 3) for k, v in f['table'].items()} })")
    if report.get("negative_budget"):
        b = report["negative_budget"]
        lines.append(f"- n-gram `negative` threshold {b['chosen']}: the best out-of-fold F1 at which at most "
                     f"{b['budget']} of each group of SmSA's and EmoT's neutral and positive validation messages "
                     f"are `negative`, at the upper end of the group's rate (Wilson, z={b['z']}) "
                     f"(without that bound: {b['without_budget']}; by threshold: {b['table']})")
    for name, b in report.get("ensemble_negative_budget", {}).items():
        lines.append(f"- `{name}` `negative` threshold {b['chosen']} within the same bound (held-out records "
                     f"alone: {b['without_budget']})")
    if report.get("fast"):
        f = report["fast"]
        lines.append(f"- `fast` (int8): transformer weight {f['w_transformer']}"
                     + ("; not offered, the int8 transformer added nothing on held-out data"
                        if f.get("offered") is False else f", held-out macro-F1 {f['held_out_macro_f1']:.3f}"))
    if report.get("spam_hide"):
        h = report["spam_hide"]
        lines.append(f"- spam is hidden on Instagram only from spam probability {h.get('at')} on, and only when no "
                     f"other label fires (held-out: precision {h.get('precision')}, {h.get('false_hides')} false "
                     f"hides of {h.get('hidden')}, recall {h.get('recall')}, n={h.get('n')})")
    if report.get("spam_evidence"):
        lines.append("- against a spam score, another label keeps the ticket from probability: "
                     + "; ".join(f"{name} {got['chosen']} (held-out macro-F1 by level: {got['table']})"
                                 for name, got in report["spam_evidence"].items()))
    if "public_extra" in report:
        x = report["public_extra"]
        lines.append(f"- real sets' training parts ({', '.join(x['sets'])}): {x['rows']} rows, weight {x['weight']}")
    if "judol_label_extra" in report:
        x = report["judol_label_extra"]
        lines.append(f"- judol promotions as 'no complaint/question/negative' rows for the label models: {x['rows']}")
    if "sentiment_extra" in report:
        x = report["sentiment_extra"]
        lines.append(f"- SmSA train rows as weak `negative` data: {x['rows']} ({x['negative']} negative), "
                     f"weight {x['weight']}")
    cfg = report.get("config", {})
    if cfg:
        lines.append(f"- default backend: `{cfg.get('default_backend')}`; thresholds: "
                     + "; ".join(f"{n}: {b['thresholds']}" for n, b in cfg.get("backends", {}).items()))
    lines.append(f"- training time {report.get('total_seconds', report.get('train_seconds', 0)):.0f} s")
    return "\n".join(lines)


def render_public(public: Mapping[str, Any]) -> list[str]:
    """The real-set figures of every backend: the share of each group given each label."""
    from classifiers.public_sets import TARGETS

    lines = ["Real sets, test parts (never trained or tuned on; sent as kemendag comments): the share of each "
             "group given a label, against the targets of issue 12 (≤ a rate that should stay low, ≥ a recall).", "",
             "| group | label | target | " + " | ".join(public) + " |",
             "|---|---|---|" + "---|" * len(public)]
    for group, label, kind, bound in TARGETS:
        cells = []
        for rep in public.values():
            fig = rep["figures"].get(group, {})
            cells.append(f"{fig[label]:.3f}" if label in fig else "—")
        lines.append(f"| {group} (n={next(iter(public.values()))['figures'].get(group, {}).get('n', 0)}) | {label} | "
                     f"{'≤' if kind == 'max' else '≥'} {bound:.2f} | " + " | ".join(cells) + " |")
    return lines


def write_model_card(report: Mapping[str, Any], path: Path) -> None:
    """Replace the figures block of the model card (or append one)."""
    block = f"{CARD_START}\n{render_figures(report)}\n{CARD_END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Model card: triage classifier\n\n## Figures\n\n"
    if CARD_START in text and CARD_END in text:
        head, rest = text.split(CARD_START, 1)
        tail = rest.split(CARD_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
