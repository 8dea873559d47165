"""Which unit answers a message: the media team's keywords first, the learned model second.

- no label, or spam: nobody (None, "none");
- only `negative`: the account's default unit (humas), "default";
- complaint or question: the units whose routing.yaml keywords occur in the
  message (whole words, on the normalised and the leetspeak view). One match
  wins outright ("rule"); several: the unit with the highest `priority` in
  routing.yaml wins; among equals the learned unit model picks, or
  without it the longest keyword wins; none: the learned model's best unit
  ("model"), or the default unit without a model or when the model's best
  unit is below `floor` ("default": a street-light complaint reaches humas,
  not a specialist unit that would bounce it).
- `outrank_at` (chosen at training time, off by default): a keyword of a
  lower-priority unit loses to the learned model when the model gives a
  unit of higher priority at least this probability ("model"). A levy report
  that names PKH but none of itjen's keywords ("pendamping minta 50rb
  tiap pencairan") then reaches the Inspectorate, as the priorities say;
  between units of equal priority the keyword still always wins.

Keywords are compiled when the Router is built, so a keyword added to
routing.yaml takes effect at the next start, without retraining.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from classifiers.base import AccountRules
from classifiers.normalize import match_views, normalize


class UnitModel(Protocol):
    def unit_probs(self, accounts: Sequence[str], texts: Sequence[str]) -> list[dict[str, float]]: ...


@dataclass(frozen=True)
class _Keyword:
    unit: str
    pattern: re.Pattern[str]
    length: int


def _compile(keyword: str) -> re.Pattern[str] | None:
    norm = normalize(keyword)
    if not norm:
        return None
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", norm) if p]
    if not parts:
        return None
    # "e-warong", "e warong" and "ewarong" are the same keyword to a citizen typing fast.
    body = r"[\s\-]*".join(parts) if len(parts) > 1 and all(len(p) <= 2 for p in parts[:1]) else r"[\s\-]+".join(parts)
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])")


class Router:
    """Routes labelled messages of the accounts in `rules` to a unit."""

    def __init__(self, rules: Mapping[str, AccountRules], unit_model: UnitModel | None = None, *,
                 outrank_at: float | None = None, floor: float | None = None) -> None:
        self.rules = dict(rules)
        self.unit_model = unit_model
        self.outrank_at = outrank_at
        self.floor = floor
        self._keywords: dict[str, list[_Keyword]] = {}
        for account, acc in self.rules.items():
            kws: list[_Keyword] = []
            for unit_rules in acc.units:
                for kw in unit_rules.keywords:
                    pat = _compile(kw)
                    if pat is not None:
                        kws.append(_Keyword(unit_rules.unit, pat, len(normalize(kw))))
            self._keywords[account] = kws

    def matches(self, account: str, text: str) -> dict[str, int]:
        """Unit -> length of its longest keyword found in the text."""
        found: dict[str, int] = {}
        kws = self._keywords.get(account)
        if not kws:
            return found
        views = match_views(text[:20000])
        for kw in kws:
            if any(kw.pattern.search(v) for v in views):
                found[kw.unit] = max(found.get(kw.unit, 0), kw.length)
        return found

    def route(self, account: str, text: str, labels: Sequence[str],
              unit_probs: Mapping[str, float] | None = None) -> tuple[str | None, str]:
        """(unit or None, source) where source is "rule", "model", "default" or "none"."""
        acc = self.rules.get(account)
        if acc is None or not labels or "spam" in labels:
            return None, "none"
        if not ({"complaint", "question"} & set(labels)):
            return acc.default_unit, "default"  # negative only: the media team watches the tone
        known = set(acc.unit_keys) | {acc.default_unit}
        probs = {u: p for u, p in (unit_probs or {}).items() if u in known}
        found = self.matches(account, text)
        rank = {u.unit: u.priority for u in acc.units}
        if found and probs and self.outrank_at is not None:
            best = max(probs, key=lambda u: probs[u])
            if probs[best] >= self.outrank_at and rank.get(best, 0) > max(rank.get(u, 0) for u in found):
                return best, "model"
        if len(found) > 1:  # a unit the media team ranked higher wins (a levy on PKH is the Inspectorate's)
            top = max(rank.get(u, 0) for u in found)
            found = {u: n for u, n in found.items() if rank.get(u, 0) == top}
        if len(found) == 1:
            return next(iter(found)), "rule"
        if found:
            if probs:
                return max(found, key=lambda u: (probs.get(u, 0.0), found[u])), "rule"
            return max(found, key=lambda u: (found[u], -acc.unit_keys.index(u))), "rule"
        if probs:
            best = max(probs, key=lambda u: probs[u])
            if self.floor is None or probs[best] >= self.floor:
                return best, "model"
        # Unsure, or no model: the media team's unit, rather than a specialist who bounces it.
        return acc.default_unit, "default"

    def route_many(self, accounts: Sequence[str], texts: Sequence[str], labels: Sequence[Sequence[str]],
                   ) -> list[tuple[str | None, str, dict[str, float]]]:
        """Route a batch; the unit model runs once, only on the messages that may need it."""
        need = [i for i, lab in enumerate(labels)
                if lab and "spam" not in lab and {"complaint", "question"} & set(lab)]
        probs: dict[int, dict[str, float]] = {}
        if self.unit_model is not None and need:
            got = self.unit_model.unit_probs([accounts[i] for i in need], [texts[i] for i in need])
            probs = dict(zip(need, got))
        out: list[tuple[str | None, str, dict[str, float]]] = []
        for i, (acc, text, lab) in enumerate(zip(accounts, texts, labels)):
            unit, source = self.route(acc, text, lab, probs.get(i))
            out.append((unit, source, probs.get(i, {})))
        return out
