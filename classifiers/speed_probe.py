"""Time the transformer backends on this machine in a process of their own.

    python -m classifiers.speed_probe MODEL_DIR RULES_JSON

`pipeline.choose_default` starts this when it has no remembered choice for the
model and CPU: the bot starts at once on the n-gram backend, while this process
loads torch and the transformer (about 15 s and 600 MB more on 2 cores), times
them as `choose_default` would and remembers the choice for the next start.
The bot's own load time and memory stay those of the backend it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from classifiers.base import rules_from_json


def main(argv: list[str]) -> int:
    from classifiers.pipeline import PROBE_LOCK, choice_path, load_classifier

    model_dir, rules_file = Path(argv[0]), Path(argv[1])
    os.environ["TRIAGE_SPEED_PROBE"] = "now"  # this process measures; it starts no other
    try:
        pipe = load_classifier(rules_from_json(rules_file.read_text(encoding="utf-8")), model_dir)
        print(f"speed probe: {pipe.choice}", flush=True)
    finally:
        (choice_path().parent / PROBE_LOCK).unlink(missing_ok=True)
        rules_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
