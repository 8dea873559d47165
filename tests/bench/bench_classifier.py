"""Benchmark the classifier: load time, throughput, single-message latency, peak memory.

    python tests/bench/bench_classifier.py [--backend default|ngram] [--model-dir DIR] [--messages FILE]

Targets for the default pipeline on the project's 2-core machine: >= 100
messages/s in batches, p95 single-message latency < 150 ms, peak RSS < 1.2 GB.
Messages are the texts of classifiers/data/eval.jsonl (only the texts are read).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.machine import machine, peak_rss_mb  # noqa: E402 (after the path is set)

TARGETS = {"messages_per_second": 100.0, "p95_ms": 150.0, "peak_rss_mb": 1200.0}


def main() -> int:
    from classifiers.base import MessageIn
    from classifiers.commands import default_rules
    from classifiers.pipeline import load_classifier

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="default")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--messages", type=Path, default=ROOT / "classifiers" / "data" / "eval.jsonl")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--single", type=int, default=200, help="messages timed one by one")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rows = [json.loads(line) for line in args.messages.read_text(encoding="utf-8").splitlines() if line.strip()]
    msgs = [MessageIn(r["account"], r["channel"], r["text"]) for r in rows]
    comments = [m for m in msgs if m.channel == "comment"]
    dms = [m for m in msgs if m.channel == "dm"]

    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    clf = load_classifier(default_rules(), args.model_dir, backend=args.backend)
    load_s = time.perf_counter() - t0
    print(f"backend: {args.backend} -> {getattr(getattr(clf, 'config', None), 'name', '?')}; load {load_s:.2f} s")
    scorer = getattr(clf, "transformer", None)
    if scorer is not None:
        print(f"transformer: {'int8' if scorer.quantized else 'bf16' if scorer.bf16 else 'fp32'} matmuls, "
              f"cascade {clf.config.cascade_rule} margin {clf.config.cascade_margin}")
    clf.predict(msgs[:8])  # warm up

    out: dict[str, float] = {"load_seconds": load_s}
    for name, batch in (("comments", comments), ("dms", dms)):
        t = time.perf_counter()
        for i in range(0, len(batch), args.batch):
            clf.predict(batch[i:i + args.batch])
        rate = len(batch) / (time.perf_counter() - t)
        out[f"{name}_per_second"] = rate
        print(f"{name:<9} {len(batch):>4} messages in batches of {args.batch}: {rate:7.1f} messages/s")

    lat = []
    for m in (msgs * 2)[: args.single]:
        t = time.perf_counter()
        clf.predict([m])
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    p95 = lat[int(0.95 * (len(lat) - 1))]
    out.update(p50_ms=statistics.median(lat), p95_ms=p95, peak_rss_mb=peak_rss_mb())
    print(f"single-message latency: p50 {out['p50_ms']:.1f} ms, p95 {p95:.1f} ms (n={len(lat)})")
    print(f"peak RSS {out['peak_rss_mb']:.0f} MB")
    rate = min(out["comments_per_second"], out["dms_per_second"])
    verdict = [
        f"throughput {'OK' if rate >= TARGETS['messages_per_second'] else 'MISSED'} (min {rate:.0f}/s, target >= 100/s)",
        f"p95 {'OK' if p95 < TARGETS['p95_ms'] else 'MISSED'} ({p95:.0f} ms, target < 150 ms)",
        f"memory {'OK' if out['peak_rss_mb'] < TARGETS['peak_rss_mb'] else 'MISSED'} ({out['peak_rss_mb']:.0f} MB, target < 1200 MB)",
    ]
    print("; ".join(verdict))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
