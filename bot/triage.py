"""The pure triage core: the domain types, and what to do with a classified message.

Nothing here talks to Instagram, Telegram or SQLite: data in, decisions out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from classifiers.base import MessageIn, Prediction

OPEN, ACKNOWLEDGED, RESOLVED, SPAM = "open", "acknowledged", "resolved", "spam"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED, SPAM)
ACTIVE_STATUSES = (OPEN, ACKNOWLEDGED)


@dataclass(frozen=True)
class InboundMessage:
    """A comment, a reply or a DM as it came from Instagram, before triage."""

    id: str  # Instagram's own id: unique across polls and webhooks
    account: str
    channel: str  # "comment" (replies included) or "dm"
    text: str
    created_at: datetime  # aware; when the citizen wrote it
    author_id: str | None = None
    author_username: str | None = None
    media_id: str | None = None
    conversation_id: str | None = None
    parent_id: str | None = None
    permalink: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def for_classifier(self) -> MessageIn:
        return MessageIn(account=self.account, channel=self.channel, text=self.text)


def iso(moment: datetime) -> str:
    """Timestamps are stored as UTC ISO strings so that they sort as text."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the store needs time-zone-aware moments")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Ticket:
    """A message someone must answer (or spam), as the store keeps it."""

    id: int
    message_id: str
    account: str
    channel: str
    unit: str | None
    status: str
    labels: tuple[str, ...]
    scores: Mapping[str, float]
    unit_source: str
    lang: str
    text: str
    author_username: str | None
    permalink: str | None
    media_id: str | None
    conversation_id: str | None
    received_at: datetime
    created_at: datetime
    deadline: datetime | None
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    resolved_by: int | None
    resolved_at: datetime | None
    resolution_note: str | None
    surge_id: int | None = None  # the surge of its post it arrived in (bot/surges.py), if any
    group_id: int | None = None  # the group of similar tickets it belongs to, if any

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = iso(value) if isinstance(value, datetime) else value
        out["labels"] = list(self.labels)
        out["scores"] = dict(self.scores)
        return out


@dataclass(frozen=True)
class TicketDecision:
    """A message that needs a ticket: who answers it and by when."""

    account: str
    status: str  # OPEN, or SPAM (spam is counted and listed, never forwarded)
    unit: str | None
    labels: tuple[str, ...]
    scores: Mapping[str, float]
    unit_source: str
    lang: str
    deadline: datetime | None
    # The spam score was high but other labels won (kept on the ticket's first event).
    spam_flag: bool = False
    # Spam alone at a score where hiding it was measured safe; nothing else is ever hidden.
    may_hide: bool = False


def decide(
    message: InboundMessage,
    prediction: Prediction,
    deadline_for: Callable[[datetime], datetime],
) -> TicketDecision | None:
    """Spam becomes a spam ticket, a message a unit must answer becomes an open
    ticket with its deadline, and anything else (praise, chatter) no ticket."""
    if "spam" in prediction.labels:
        return TicketDecision(message.account, SPAM, None, ("spam",), dict(prediction.scores), "none",
                              prediction.lang, None, spam_flag=True, may_hide=prediction.may_hide)
    if prediction.unit is None:
        return None
    return TicketDecision(
        account=message.account,
        status=OPEN,
        unit=prediction.unit,
        labels=prediction.labels,
        scores=dict(prediction.scores),
        unit_source=prediction.unit_source,
        lang=prediction.lang,
        deadline=deadline_for(message.created_at),
        spam_flag=prediction.spam_flag,
    )
