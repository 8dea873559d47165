"""Benchmark the transformer backend on this machine (a script, not a test).

    python tests/bench/bench_transformer.py [--model DIR] [--base DIR] [--threads N] [--mode fp32|int8|both]

Prints the machine, load time, messages/s for batches of short comments and of
long DMs, p50/p95 latency of single messages, and peak RSS. Each mode runs in
its own process so peak memory is per configuration. Without --model a
throwaway model (one training step on toy text) is made: fine for speed and
memory, meaningless for accuracy. Texts come from the public Indonesian data in
/work/shared/data/public (or --texts FILE, one text per line); nothing is sent
anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PUBLIC = Path(os.environ.get("TRIAGE_PUBLIC_DATA", "/work/shared/data/public"))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_texts(path: str | None) -> tuple[list[str], list[str]]:
    """(short comments, long DMs)."""
    texts: list[str] = []
    if path:
        texts = [t.strip() for t in Path(path).read_text(encoding="utf-8").splitlines() if t.strip()]
    else:
        smsa = PUBLIC / "indonlu_smsa" / "valid_preprocess.tsv"
        if smsa.exists():
            texts += [ln.split("\t")[0] for ln in smsa.read_text(encoding="utf-8").splitlines()]
        judol = PUBLIC / "judol_youtube" / "dataset_judol_clean.csv"
        if judol.exists():
            import csv

            with judol.open(encoding="utf-8") as f:
                texts += [r["comment_text_clean"] for _, r in zip(range(3000), csv.DictReader(f))]
    if not texts:
        texts = ["min bansos PKH tahap 2 kok belum cair ya? udah 3 bulan",
                 "harga minyak goreng mahal banget", "slot gacor maxwin link di bio",
                 "terima kasih kemensos 🙏"] * 50
    rnd = random.Random(0)
    short = [t for t in texts if 3 <= len(t.split()) <= 25]
    rnd.shuffle(short)
    long_src = [t for t in texts if len(t.split()) >= 40] or texts
    longs = []
    for i in range(200):  # DMs: 120-250 words, several sentences
        parts, n = [], 0
        while n < rnd.randint(120, 250):
            t = rnd.choice(long_src)
            parts.append(t)
            n += len(t.split())
        longs.append(" ".join(parts))
    return short[:2000], longs


def throwaway_model(base: Path) -> Path:
    import numpy as np

    from classifiers.transformer import TransformerSettings, train_transformer

    out = Path(tempfile.mkdtemp(prefix="bench-model-")) / "m"
    texts = ["bansos belum cair", "cara daftar pkh?", "dasar tidak becus", "slot gacor maxwin"] * 5
    y = np.tile(np.eye(4, dtype=np.float32), (5, 1))
    train_transformer(texts, y, out, TransformerSettings(base_dir=base, epochs=1, batch_size=4, max_steps=1,
                                                         progress=False))
    return out


def run_one(args) -> dict:
    t_imp = time.perf_counter()
    import numpy as np
    import torch

    from classifiers.e5_weights import base_model_dir
    from classifiers.transformer import TransformerScorer

    import_s = time.perf_counter() - t_imp
    base = Path(args.base) if args.base else base_model_dir()
    model = Path(args.model) if args.model else throwaway_model(base)
    short, longs = load_texts(args.texts)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    sc = TransformerScorer.load(model, base, threads=args.threads, quantize=(args.mode == "int8"))
    load_s = time.perf_counter() - t0
    res = {"mode": args.mode, "torch_threads": torch.get_num_threads(), "import_s": round(import_s, 2),
           "load_s": round(load_s, 2), "rss_after_load_mb": round(rss_mb(), 0),
           "max_length": sc.max_length}
    sc.label_probs(short[:16])  # warm-up

    def rate(texts, reps=1):
        t = time.perf_counter()
        for _ in range(reps):
            sc.label_probs(texts)
        return len(texts) * reps / (time.perf_counter() - t)

    res["short_batch_msgs_per_s"] = round(rate(short[: args.n_short]), 1)
    res["long_dm_batch_msgs_per_s"] = round(rate(longs[: args.n_long]), 1)
    lat = []
    rnd = random.Random(1)
    pool = short[:500] + longs[:50]
    for _ in range(args.n_single):
        t = rnd.choice(pool)
        s = time.perf_counter()
        sc.label_probs([t])
        lat.append((time.perf_counter() - s) * 1000)
    lat_short = []
    for t in short[: args.n_single]:
        s = time.perf_counter()
        sc.label_probs([t])
        lat_short.append((time.perf_counter() - s) * 1000)
    res["single_p50_ms"] = round(float(np.percentile(lat, 50)), 1)
    res["single_p95_ms"] = round(float(np.percentile(lat, 95)), 1)
    res["single_short_p95_ms"] = round(float(np.percentile(lat_short, 95)), 1)
    res["peak_rss_mb"] = round(rss_mb(), 0)
    res["rss_before_load_mb"] = round(rss_before, 0)
    res["loadavg_end"] = os.getloadavg()[0]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="trained model folder (default: a throwaway one)")
    ap.add_argument("--base", help="base BertModel folder (default: e5_weights.base_model_dir())")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--mode", choices=["fp32", "int8", "both"], default="both")
    ap.add_argument("--texts", help="file with one text per line")
    ap.add_argument("--n-short", type=int, default=500)
    ap.add_argument("--n-long", type=int, default=64)
    ap.add_argument("--n-single", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print one JSON line (used internally)")
    args = ap.parse_args()

    if args.mode == "both":
        import torch

        print(f"machine: {cpu_model()} | cores {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}) | "
              f"python {platform.python_version()} | torch {torch.__version__} | "
              f"default torch threads {torch.get_num_threads()} | load avg {os.getloadavg()[0]:.2f}")
        if not args.model:
            print("no --model: speed/memory only, with a throwaway model")
        for mode in ("fp32", "int8"):
            cmd = [sys.executable, __file__, "--mode", mode, "--json"] + [
                x for k, v in (("--model", args.model), ("--base", args.base), ("--threads", args.threads),
                               ("--texts", args.texts), ("--n-short", args.n_short), ("--n-long", args.n_long),
                               ("--n-single", args.n_single)) if v is not None for x in (k, str(v))]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            print(f"\n[{mode}]")
            for k, v in res.items():
                print(f"  {k:26s} {v}")
        return
    res = run_one(args)
    if args.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
