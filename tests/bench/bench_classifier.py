"""Benchmark the classifier: load time, throughput, single-message latency, peak memory.

    python tests/bench/bench_classifier.py [--backend default|transformer|fast|ngram] [--model-dir DIR]

Issue 12's targets for the default backend on the project's machine (2 cores,
AVX2, no bf16), idle: >= 300 comments/s and >= 150 DMs/s in batches, and at
least 0.6x the `ngram` backend measured in the same run (machines are noisy);
p95 single message < 100 ms; peak RSS <= 700 MB; load <= 8 s. The n-gram
comparison runs in a child process so that each figure of memory is its own.
Messages are the texts of classifiers/data/eval.jsonl (only the texts are read).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.machine import cpu_flags, load_average, machine, peak_rss_mb  # noqa: E402 (after the path is set)

TARGETS = {"comments_per_second": 300.0, "dms_per_second": 150.0, "ratio_to_ngram": 0.6, "p95_ms": 100.0,
           "peak_rss_mb": 700.0, "load_seconds": 8.0}


def measure(backend: str, model_dir: Path | None, messages: Path, batch: int, single: int) -> dict[str, object]:
    from bot.config import load_routing
    from classifiers.base import MessageIn
    from classifiers.pipeline import load_classifier

    rows = [json.loads(line) for line in messages.read_text(encoding="utf-8").splitlines() if line.strip()]
    msgs = [MessageIn(r["account"], r["channel"], r["text"]) for r in rows]
    t0 = time.perf_counter()
    routing = Path(os.environ.get("TRIAGE_CONFIG", ROOT / "routing.yaml"))
    clf = load_classifier(load_routing(routing).account_rules(), model_dir, backend=backend)
    out: dict[str, object] = {"load_seconds": time.perf_counter() - t0, "chosen": clf.config.name,
                              "why": getattr(clf, "choice", "")}
    scorer = getattr(clf, "transformer", None)
    out["path"] = ("int8" if scorer.quantized else "bf16" if scorer.bf16 else "fp32") if scorer else "no torch"
    clf.predict(msgs[:8])  # warm up
    for name, channel in (("comments", "comment"), ("dms", "dm")):
        part = [m for m in msgs if m.channel == channel]
        t = time.perf_counter()
        for i in range(0, len(part), batch):
            clf.predict(part[i:i + batch])
        out[f"{name}_per_second"] = len(part) / (time.perf_counter() - t)
        out[f"{name}_n"] = len(part)
    lat = []
    for m in (msgs * 2)[:single]:
        t = time.perf_counter()
        clf.predict([m])
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    out.update(p50_ms=statistics.median(lat), p95_ms=lat[int(0.95 * (len(lat) - 1))], peak_rss_mb=peak_rss_mb())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="default")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--messages", type=Path, default=ROOT / "classifiers" / "data" / "eval.jsonl")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--single", type=int, default=200, help="messages timed one by one")
    ap.add_argument("--json", action="store_true", help="print only this backend's figures as JSON (no comparison)")
    args = ap.parse_args()

    if args.json:
        print(json.dumps(measure(args.backend, args.model_dir, args.messages, args.batch, args.single)))
        return 0
    print(f"machine: {machine()}")
    print(f"CPU speed flags: {cpu_flags()}; load average before: {load_average()}")
    figures = {}
    for backend in dict.fromkeys([args.backend, "ngram"]):
        cmd = [sys.executable, __file__, "--backend", backend, "--batch", str(args.batch), "--single",
               str(args.single), "--messages", str(args.messages), "--json"]
        if args.model_dir:
            cmd += ["--model-dir", str(args.model_dir)]
        figures[backend] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    for backend, f in figures.items():
        print(f"\n{backend} -> {f['chosen']} ({f['path']}); load {f['load_seconds']:.2f} s")
        if f["why"]:
            print(f"  why: {f['why']}")
        print(f"  comments {f['comments_per_second']:7.1f}/s (n={f['comments_n']}), DMs {f['dms_per_second']:7.1f}/s "
              f"(n={f['dms_n']}), batches of {args.batch}")
        print(f"  single message: p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms; peak RSS {f['peak_rss_mb']:.0f} MB")
    main_f, ngram = figures[args.backend], figures["ngram"]
    ratio = min(main_f["comments_per_second"] / ngram["comments_per_second"],
                main_f["dms_per_second"] / ngram["dms_per_second"])
    checks = [
        ("comments/s", main_f["comments_per_second"] >= TARGETS["comments_per_second"], f"{main_f['comments_per_second']:.0f} >= 300"),
        ("DMs/s", main_f["dms_per_second"] >= TARGETS["dms_per_second"], f"{main_f['dms_per_second']:.0f} >= 150"),
        ("vs ngram", ratio >= TARGETS["ratio_to_ngram"], f"{ratio:.2f}x >= 0.6x"),
        ("p95", main_f["p95_ms"] < TARGETS["p95_ms"], f"{main_f['p95_ms']:.0f} ms < 100 ms"),
        ("memory", main_f["peak_rss_mb"] <= TARGETS["peak_rss_mb"], f"{main_f['peak_rss_mb']:.0f} MB <= 700 MB"),
        ("load", main_f["load_seconds"] <= TARGETS["load_seconds"], f"{main_f['load_seconds']:.1f} s <= 8 s"),
    ]
    print("\n" + "; ".join(f"{name} {'OK' if ok else 'MISSED'} ({shown})" for name, ok, shown in checks))
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
