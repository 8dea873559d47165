"""Incremental collection of new comments and DMs for one account, independent of storage.

Instagram has no `since` filter on comments or conversations, so each poll
works from cheap change signals and reads only what moved:

* one media list call; comments are read only for media whose
  `comments_count` changed (either way: deletions lower it) or that are new
  within the window, and only until enough unknown comments were found;
* one conversations call (more only while pages are newer than what we saw);
  messages are read only for conversations whose `updated_time` moved.

Novelty is decided by id through `is_known` (the store's answer), never by
position, so overlapping or repeated polls cannot produce duplicates. The
state that steers the next poll is returned, never stored here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.instagram import (
    Comment,
    Conversation,
    DirectMessage,
    InstagramClient,
    InvalidRequest,
    Media,
    SkippedItem,
)

IsKnown = Callable[[Sequence[str]], AbstractSet[str]]
MAX_CONVERSATIONS = 2000  # watermarks kept; older conversations are simply treated as new again
STATE_VERSION = 1

Item = TypeVar("Item", Comment, DirectMessage)


@dataclass(frozen=True)
class PollState:
    """What the previous poll saw. Serialise with to_json/from_json; do not persist cursors (Meta voids them)."""

    media_counts: Mapping[str, int] = field(default_factory=dict)  # media id -> comments_count
    conversation_times: Mapping[str, datetime] = field(default_factory=dict)  # conversation id -> updated_time
    last_poll: datetime | None = None
    backfill_done: bool = False
    horizon: datetime | None = None  # nothing older than this is ever reported (set by the backfill)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "media_counts": dict(self.media_counts),
                "conversation_times": {k: v.isoformat() for k, v in self.conversation_times.items()},
                "last_poll": _iso(self.last_poll),
                "backfill_done": self.backfill_done,
                "horizon": _iso(self.horizon),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> PollState:
        """Parse to_json's output; raises ValueError on anything else."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("not a PollState document")
        counts = data.get("media_counts", {})
        times = data.get("conversation_times", {})
        if not isinstance(counts, dict) or not all(isinstance(v, int) for v in counts.values()):
            raise ValueError("media_counts must map ids to integers")
        if not isinstance(times, dict):
            raise ValueError("conversation_times must map ids to timestamps")
        return cls(
            media_counts={str(k): v for k, v in counts.items()},
            conversation_times={str(k): _parse_aware(v) for k, v in times.items()},
            last_poll=_parse_optional(data.get("last_poll")),
            backfill_done=bool(data.get("backfill_done", False)),
            horizon=_parse_optional(data.get("horizon")),
        )


@dataclass(frozen=True)
class PollResult:
    new_comments: list[Comment]  # from other people, top-level and replies, unknown to the store
    new_dms: list[DirectMessage]  # incoming only: the account's own sends (echoes) are left out
    new_state: PollState
    calls_made: int
    skipped: list[SkippedItem]  # malformed items, and media whose comments could not be read
    own_comments: list[Comment] = field(default_factory=list)  # the account's own replies, e.g. typed in the app


async def collect(
    client: InstagramClient,
    state: PollState | None,
    *,
    now: datetime,
    is_known: IsKnown,
    backfill_days: int = 7,
    media_limit: int = 50,
) -> PollResult:
    """One poll of one account. `now` must be timezone-aware; `is_known(ids)` returns the ids already stored."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    state = state or PollState()
    backfill = not state.backfill_done
    horizon = state.horizon if state.horizon and not backfill else now - timedelta(days=backfill_days)
    calls_before, skipped_before = client.calls, client.skipped_total
    poll = _Poll(client, is_known, horizon)

    media_counts = await _collect_comments(poll, state, media_limit)
    conversation_times = await _collect_dms(poll, state, backfill)

    own = [c for c in poll.comments if c.user_id == client.ig_user_id]
    return PollResult(
        new_comments=[c for c in poll.comments if c.user_id != client.ig_user_id],
        new_dms=poll.dms,
        new_state=PollState(media_counts, conversation_times, now, True, horizon),
        calls_made=client.calls - calls_before,
        skipped=_skipped_since(client, skipped_before) + poll.failures,
        own_comments=own,
    )


class _Poll:
    """Per-poll bookkeeping: what was seen, what was found."""

    def __init__(self, client: InstagramClient, is_known: IsKnown, horizon: datetime) -> None:
        self.client = client
        self.is_known = is_known
        self.horizon = horizon
        self.seen: set[str] = set()
        self.comments: list[Comment] = []
        self.dms: list[DirectMessage] = []
        self.failures: list[SkippedItem] = []

    def fresh(self, items: Iterable[Item], not_before: datetime, when: Callable[[Item], datetime]) -> list[Item]:
        """Items not seen in this poll, not older than `not_before`, and unknown to the store (one lookup)."""
        candidates: list[Item] = []
        for item in items:
            if item.id not in self.seen and when(item) >= not_before:
                self.seen.add(item.id)
                candidates.append(item)
        if not candidates:
            return []
        known = self.is_known([item.id for item in candidates])
        return [item for item in candidates if item.id not in known]


# ---- comments ------------------------------------------------------------------


async def _collect_comments(poll: _Poll, state: PollState, media_limit: int) -> dict[str, int]:
    """Read comments of media that changed; return the comments_count watermarks for the next poll."""
    counts: dict[str, int] = {}
    for media in await poll.client.list_media(media_limit):
        previous = state.media_counts.get(media.id)
        counts[media.id] = media.comments_count  # media that left the list are dropped from the state
        if media.comments_count == previous or (previous is None and media.comments_count == 0):
            continue
        try:
            poll.comments += await _new_comments(poll, media, _expected_new(media, previous, poll.horizon))
        except InvalidRequest as exc:
            # The media vanished or became unreadable after listing: keep the old
            # watermark so the next poll tries again, and carry on with the rest.
            poll.failures.append(SkippedItem("media", f"comments unreadable: {exc}", {"id": media.id}, retried=True))
            _restore(counts, media.id, previous)
    return counts


def _expected_new(media: Media, previous: int | None, horizon: datetime) -> int:
    """How many new comments the count change promises; 0 means "read until a page has nothing new"."""
    if previous is not None:
        return media.comments_count - previous
    # Unseen media posted before the horizon (the backfill's older posts): most of
    # their comments are too old to report, so only read while pages bring news.
    return media.comments_count if media.timestamp >= horizon else 0


async def _new_comments(poll: _Poll, media: Media, delta: int) -> list[Comment]:
    """Page from the newest comments until the rise in comments_count is accounted for.

    When the count rose by `delta`, keep paging until that many unknown comments
    turned up: a new reply sits on the page of its (possibly old) parent, so a
    page without news proves nothing. When it fell or stayed (deletions, maybe
    plus additions) stop at the first page with nothing unknown.
    """
    found: list[Comment] = []
    async for page in poll.client.iter_comments(media.id):
        fresh = poll.fresh(page, poll.horizon, lambda c: c.timestamp)
        found += fresh
        if (delta > 0 and len(found) >= delta) or (delta <= 0 and not fresh):
            break
    return found


# ---- direct messages ----------------------------------------------------------------


async def _collect_dms(poll: _Poll, state: PollState, backfill: bool) -> dict[str, datetime]:
    """Open only conversations updated since their watermark; return the new watermarks."""
    times = dict(state.conversation_times)
    floor = poll.horizon if backfill else max(times.values(), default=poll.horizon)
    async for page in poll.client.iter_conversations():
        for conversation in page:
            await _read_conversation(poll, conversation, times)
        # Conversations come most recently updated first: once a page reaches
        # the newest time we already knew, later pages hold nothing new.
        if page and min(c.updated_time for c in page) <= floor:
            break
    return _newest(times, MAX_CONVERSATIONS)


async def _read_conversation(poll: _Poll, conversation: Conversation, times: dict[str, datetime]) -> None:
    mark = times.get(conversation.id)
    if mark is not None and conversation.updated_time <= mark:
        return
    if mark is None and conversation.updated_time < poll.horizon:
        return
    try:
        poll.dms += await _new_messages(poll, conversation.id, mark or poll.horizon)
    except InvalidRequest as exc:
        poll.failures.append(SkippedItem("conversation", f"messages unreadable: {exc}", {"id": conversation.id},
                                         retried=True))
        return
    times[conversation.id] = conversation.updated_time


async def _new_messages(poll: _Poll, conversation_id: str, since: datetime) -> list[DirectMessage]:
    """Unknown incoming messages not older than `since`; echoes of our own sends are left out."""
    found: list[DirectMessage] = []
    async for page in poll.client.iter_messages(conversation_id):
        # `>=` on purpose: a message in the same second as the watermark is new
        # unless the store knows its id.
        fresh = poll.fresh(page, since, lambda m: m.created_time)
        found += [m for m in fresh if m.sender_id != poll.client.ig_user_id]
        if not fresh or any(m.created_time < since for m in page):
            break
    return found


# ---- helpers ------------------------------------------------------------------------


def _restore(counts: dict[str, int], media_id: str, previous: int | None) -> None:
    if previous is None:
        del counts[media_id]
    else:
        counts[media_id] = previous


def _newest(times: dict[str, datetime], keep: int) -> dict[str, datetime]:
    if len(times) <= keep:
        return times
    return dict(sorted(times.items(), key=lambda kv: kv[1], reverse=True)[:keep])


def _skipped_since(client: InstagramClient, total_before: int) -> list[SkippedItem]:
    # client.skipped is a bounded deque; skipped_total tells how many of its tail are ours.
    count = min(client.skipped_total - total_before, len(client.skipped))
    return list(client.skipped)[len(client.skipped) - count :] if count else []


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_aware(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {value!r}")
    return parsed


def _parse_optional(value: Any) -> datetime | None:
    return None if value is None else _parse_aware(value)
