"""Benchmark surge grouping (issue 16): vectorise time, grouping time, ARI and purity.

    .venv/bin/python -m tests.bench.bench_grouping [--seed 0] [--sizes 500 2000 5000] [--tune] [--no-transformer]

Texts: tests.surge_texts.surge_comments(n, seed): three kinds of complaint plus ~20% noise, all
kept. ARI counts the texts in no group as one more cluster (tests.surge_texts.score_groups).
Issue 16's targets: 2,000 comments on one post grouped "well under a few seconds" on 2 cores,
with ARI or purity >= 0.8 against the seeded kinds.

--tune prints a grid of (link_at, join_at) on seed 1 with 2,000 texts, for each kind of vector:
that is how bot.grouping.SETTINGS were chosen (the tests check seed 0). The transformer's rows
need the 'transformer' extra (torch) and the shipped model; without them they are skipped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bot import grouping
from tests.bench.machine import load_average, machine, peak_rss_mb
from tests.surge_texts import score_groups, surge_comments

ROOT = Path(__file__).resolve().parents[2]
TUNE_SEED = 1
GRIDS = {
    "ngram": ([0.05, 0.06, 0.065, 0.07, 0.075, 0.08, 0.085, 0.09, 0.10, 0.11], [0.10, 0.15, 0.20, 0.25, 0.30]),
    "transformer": ([0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80], [0.40, 0.50, 0.60, 0.70, 0.80]),
}


def load_transformer() -> tuple[Any, str]:
    """The shipped classifier with its transformer backend, or None and why not."""
    try:
        from bot.config import load_routing
        from classifiers.pipeline import load_classifier

        clf = load_classifier(load_routing(ROOT / "routing.yaml").account_rules(), backend="transformer")
    except (ImportError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if getattr(clf, "transformer", None) is None or not clf.config.weights.get("transformer"):
        return None, f"the transformer did not load (backend {clf.config.name}); is torch installed?"
    return clf, ""


def measure(n: int, seed: int, classifier: Any = None) -> dict[str, Any]:
    rows = surge_comments(n, seed=seed)
    texts, kinds = [t for t, _ in rows], [k for _, k in rows]
    t0 = time.perf_counter()
    vectors, kind = grouping.text_vectors(texts, classifier)
    t1 = time.perf_counter()
    groups = grouping.new_groups(vectors, grouping.settings_for(kind))
    t2 = time.perf_counter()
    return {"kind": kind, "n": n, "vectorise_s": t1 - t0, "group_s": t2 - t1, "groups": len(groups),
            "largest": [len(g) for g in groups[:4]], **score_groups(kinds, groups)}


def tune(classifier: Any = None) -> None:
    rows = surge_comments(2000, seed=TUNE_SEED)
    texts, kinds = [t for t, _ in rows], [k for _, k in rows]
    vectors, kind = grouping.text_vectors(texts, classifier)
    links, joins = GRIDS[kind]
    print(f"\n{kind}: ARI/purity/coverage on seed {TUNE_SEED}, 2,000 texts (rows link_at, columns join_at)")
    print("link_at " + "".join(f"     join {j:.2f}     " for j in joins))
    best = (-1.0, 0.0, 0.0)
    for link in links:
        cells = []
        for join in joins:
            got = score_groups(kinds, grouping.new_groups(vectors, grouping.GroupingSettings(join, link)))
            cells.append(f"  {got['ari']:.3f}/{got['purity']:.3f}/{got['coverage']:.3f}")
            best = max(best, (got["ari"], link, join))
        print(f"{link:7.3f} " + "".join(cells))
    print(f"best ARI {best[0]:.3f} at link_at {best[1]:.3f}, join_at {best[2]:.2f}; "
          f"shipped: {grouping.settings_for(kind)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of the texts measured (the tuning seed is 1)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    ap.add_argument("--tune", action="store_true", help="also print the threshold grid on seed 1")
    ap.add_argument("--no-transformer", action="store_true")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    print(f"load average before: {load_average()}")
    grouping.new_groups(grouping.text_vectors(["pkh belum cair"] * 4)[0], grouping.settings_for("ngram"))  # warm up
    classifiers: list[Any] = [None]
    if not args.no_transformer:
        clf, why = load_transformer()
        if clf is None:
            print(f"transformer: skipped ({why})")
        else:
            classifiers.append(clf)
    for clf in classifiers:
        if args.tune:
            tune(clf)
        print(f"\n{'transformer' if clf is not None else 'ngram'} vectors, seed {args.seed}:")
        print("      n  vectorise   group    ARI  purity  coverage  groups  largest")
        for n in args.sizes:
            f = measure(n, args.seed, clf)
            print(f"{f['n']:7d} {f['vectorise_s']:8.2f}s {f['group_s']:6.2f}s  {f['ari']:.3f}  {f['purity']:.3f}"
                  f"   {f['coverage']:.3f}   {f['groups']:5d}  {f['largest']}")
    print(f"\npeak RSS: {peak_rss_mb():.0f} MB; load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
