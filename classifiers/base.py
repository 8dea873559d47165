"""The classifier contract: the only thing the bot and the CLI know about classification.

A batch of messages goes in, one prediction per message comes out. Backends
(transformer, n-gram, rules) live in their own modules and are combined in
`classifiers.pipeline`; nothing outside `classifiers/` imports them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Protocol, Sequence

LABELS: tuple[str, ...] = ("complaint", "question", "negative", "spam")
LANGS: tuple[str, ...] = ("id", "en", "jv", "su", "mixed")
CHANNELS: tuple[str, ...] = ("comment", "dm")


@dataclass(frozen=True)
class MessageIn:
    """One Instagram comment or DM, as the classifier sees it."""

    account: str  # routing.yaml account key, e.g. "kemensos"
    channel: str  # "comment" or "dm"
    text: str


@dataclass(frozen=True)
class Prediction:
    """What the classifier decided about one message.

    `scores` holds a calibrated probability for every label in LABELS, even the
    ones not chosen. `labels` is the chosen subset; "spam" never shares it: a
    message with spam and other evidence keeps the other labels, with `spam_flag`.
    `unit` is a unit key of the message's account, or None when nobody needs to
    answer (spam, no label).
    """

    labels: tuple[str, ...]
    scores: Mapping[str, float]
    unit: str | None
    lang: str
    unit_source: str = "model"  # "rule", "model", "default" or "none": why this unit
    unit_scores: Mapping[str, float] = field(default_factory=dict)
    # The spam score was high, though other labels may have won (a citizen naming a gambling site).
    spam_flag: bool = False
    # Spam alone, at a score where hiding it on Instagram was measured safe (precision >= 0.99).
    may_hide: bool = False

    @property
    def needs_answer(self) -> bool:
        return self.unit is not None


@dataclass(frozen=True)
class UnitRules:
    """The media team's topic rules for one unit, from routing.yaml."""

    unit: str
    keywords: tuple[str, ...]  # words or phrases; matched case-insensitively on word boundaries
    priority: int = 0  # when several units' keywords match, the highest priority wins


@dataclass(frozen=True)
class AccountRules:
    """Everything the router needs to know about one Instagram account."""

    account: str
    default_unit: str  # "humas": negative-only messages and topics nobody owns
    units: tuple[UnitRules, ...]

    @property
    def unit_keys(self) -> tuple[str, ...]:
        return tuple(u.unit for u in self.units)


def rules_to_json(rules: Mapping[str, AccountRules]) -> str:
    """The routing rules as JSON, for a process of our own (classifiers.speed_probe)."""
    return json.dumps({key: asdict(acc) for key, acc in rules.items()}, ensure_ascii=False)


def rules_from_json(text: str) -> dict[str, AccountRules]:
    data: dict[str, Any] = json.loads(text)
    return {key: AccountRules(account=acc["account"], default_unit=acc["default_unit"],
                              units=tuple(UnitRules(unit=u["unit"], keywords=tuple(u["keywords"]),
                                                    priority=u["priority"]) for u in acc["units"]))
            for key, acc in data.items()}


class Classifier(Protocol):
    """A batch of messages in, one Prediction per message out, in the same order."""

    def predict(self, messages: Sequence[MessageIn]) -> list[Prediction]: ...
