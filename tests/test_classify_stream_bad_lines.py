"""Issue 13 item 7: no single line stops `triage classify`; every bad line gets its own error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from classifiers.base import MessageIn, Prediction
from classifiers.commands import classify_stream

ROOT = Path(__file__).resolve().parents[1]


class Echo:
    """A classifier that labels everything a question: the stream's handling is under test."""

    def predict(self, messages: list[MessageIn]) -> list[Prediction]:
        return [Prediction(("question",), {"question": 0.9}, "humas", "id") for _ in messages]


def run(lines: list[str]) -> tuple[int, list[dict], str]:  # type: ignore[type-arg]
    out, err = io.StringIO(), io.StringIO()
    code = classify_stream(io.StringIO("".join(lines)), out, Echo(), err_stream=err, batch_size=2)
    text = out.getvalue()
    text.encode("utf-8")  # what is written can be written to a strict UTF-8 stdout
    return code, [json.loads(line) for line in text.splitlines()], err.getvalue()


def good(i: int) -> str:
    return json.dumps({"id": f"ok{i}", "account": "kemensos", "channel": "comment", "text": "pkh kapan cair"}) + "\n"


def test_a_deeply_nested_line_is_an_error_and_the_rest_goes_on() -> None:
    nested = "[" * 100_000 + "]" * 100_000 + "\n"
    code, out, err = run([good(1), nested, good(2)])
    assert code == 1
    assert [o.get("id") for o in out] == ["ok1", None, "ok2"]
    assert "line 2" in out[1]["error"] and "line 2" in err


def test_a_lone_surrogate_in_the_id_is_repaired_in_the_answer() -> None:
    line = '{"id": "a\\ud83d", "account": "kemensos", "channel": "comment", "text": "pkh kapan cair"}\n'
    code, out, _ = run([line, good(1)])
    assert code == 0 and out[0]["id"] == "a\ufffd" and out[0]["labels"] == ["question"]
    assert out[1]["id"] == "ok1"


def test_a_nan_id_is_echoed_as_valid_json() -> None:
    line = '{"id": NaN, "account": "kemensos", "channel": "comment", "text": "pkh kapan cair"}\n'
    code, out, _ = run([line, good(1)])
    assert out[0]["id"] == "NaN" and out[0]["labels"] == ["question"] and out[1]["id"] == "ok1"


def test_invalid_utf8_under_strict_stdio_is_one_bad_line_in_the_real_command(tmp_path: Path) -> None:
    data = good(1).encode() + b'{"id": "x", "account": "kemensos", "text": "caf\xe9 \xff"}\n' + good(2).encode()
    done = subprocess.run([sys.executable, "-m", "bot", "classify", "--backend", "ngram"], input=data,
                          capture_output=True, cwd=ROOT, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8:strict", "HOME": str(tmp_path)})
    rows = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert [r.get("id") for r in rows] == ["ok1", "x", "ok2"], done.stderr.decode()[-2000:]
    assert "UTF-8" in rows[1]["error"] and "labels" in rows[0] and "labels" in rows[2]
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
