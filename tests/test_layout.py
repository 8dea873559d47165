"""The shape of the code: the core imports no adapter, and no module imports itself back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The pure core: domain types, rules, rendering and formatting. Data in, data out.
CORE = ["bot.triage", "bot.deadlines", "bot.workflow", "bot.callbacks", "bot.telegram_ui", "bot.pii"]
ADAPTERS = ["telegram", "httpx", "sqlite_utils", "pydantic"]


@pytest.mark.parametrize("module", CORE)
def test_the_core_loads_no_adapter(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {ADAPTERS!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"{module} loads {loaded.stdout.strip()}"
