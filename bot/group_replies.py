"""Posting an approved group answer under each comment of its group: paced, resumable, once each.

Each reply is a row in the store (`group_replies`). Before a reply is posted its row is
marked `posting`; after Instagram answers it is marked `sent` and its ticket resolved
with the answer, in that order. A process killed between the two leaves a `posting`
row: on restart the replier first looks under that comment for a reply from the
account with the same text, and posts again only when there is none. So each comment
gets the answer once, across restarts. Replies are paced per account
(`surges.replies_per_minute`); a rate-limit answer pauses the account for as long as
Meta asks, other failures are retried with backoff and then listed with a retry button.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from bot import workflow
from bot.answers import failure_reason
from bot.callbacks import to_payload
from bot.config import ConfigError, RoutingConfig
from bot.instagram import InstagramError, RateLimited, TransientError
from bot.service import Actor, TicketService
from bot.store import TEXT, Store
from bot.store_surges import FAILED, POSTING, QUEUED, SENT, SKIPPED
from bot.surges import answer_done_view
from bot.triage import ACTIVE_STATUSES, Ticket

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


class GroupReplier:
    def __init__(self, store: Store, routing: RoutingConfig, tickets: TicketService,
                 client_for: Callable[[str], Awaitable[Any]], clock: Callable[[], datetime], *,
                 seconds_per_reply: float | None = None):
        self.store, self.routing, self.tickets, self.client_for, self.clock = store, routing, tickets, client_for, clock
        self.gap = seconds_per_reply if seconds_per_reply is not None else 60.0 / routing.surges.replies_per_minute
        self.next_at: dict[str, float] = {}  # account -> monotonic moment its next reply may go
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event, idle: float = 2.0) -> None:
        while not stop.is_set():
            try:
                posted = await self.post_due(stop)
            except Exception:  # one bad row must not stop the replies; logged in full
                log.exception("group reply pass failed")
                posted = 0
            if posted:
                continue
            self.wake.clear()
            waiter = asyncio.ensure_future(self.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, stopper], timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def post_due(self, stop: asyncio.Event | None = None, limit: int = 50) -> int:
        """Post what is due, each account at its pace; returns how many rows were handled."""
        handled = 0
        for row in self.store.surges.due_replies(self.clock(), limit):
            if stop is not None and stop.is_set():
                break
            ticket = self.store.ticket(int(row["ticket_id"]))
            if ticket is None:
                continue
            wait = self.next_at.get(ticket.account, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._one(row, ticket)
            self.next_at[ticket.account] = time.monotonic() + self.gap
            handled += 1
            self._finish_if_done(int(row["answer_id"]), int(row["group_id"]))
        return handled

    async def _one(self, row: dict[str, Any], ticket: Ticket) -> None:
        answer_id, now = int(row["answer_id"]), self.clock()
        if ticket.status not in ACTIVE_STATUSES:  # resolved by hand meanwhile: nothing to post
            self.store.surges.set_reply(answer_id, ticket.id, SKIPPED, now, error="tiket sudah selesai")
            return
        text = self._text(ticket, row["text"])
        try:
            client = await self.client_for(ticket.account)
            if row["status"] == POSTING:  # a crash came between posting and recording: look first
                found = await self._already_posted(client, ticket, text)
                if found is not None:
                    self._sent(row, ticket, found)
                    return
            self.store.surges.set_reply(answer_id, ticket.id, POSTING, now, attempt=True)
            posted = await client.reply_to_comment(self._target(ticket), text)
        except RateLimited as err:
            seconds = max(err.retry_after or 0.0, 60.0)
            self.next_at[ticket.account] = time.monotonic() + seconds
            self.store.surges.set_reply(answer_id, ticket.id, QUEUED, now, error=failure_reason(err),
                                        not_before=now + timedelta(seconds=seconds))
            return
        except (TransientError, ConfigError) as err:
            self._later_or_failed(row, ticket, err)
            return
        except InstagramError as err:
            self.store.surges.set_reply(answer_id, ticket.id, FAILED, now, error=failure_reason(err))
            return
        self._sent(row, ticket, posted)

    def _later_or_failed(self, row: dict[str, Any], ticket: Ticket, err: Exception) -> None:
        attempts, now = int(row.get("attempts") or 0) + 1, self.clock()
        reason = failure_reason(err) if isinstance(err, InstagramError) else str(err)
        if attempts >= MAX_ATTEMPTS:
            self.store.surges.set_reply(int(row["answer_id"]), ticket.id, FAILED, now, error=reason)
            return
        self.store.surges.set_reply(int(row["answer_id"]), ticket.id, QUEUED, now, error=reason,
                                    not_before=now + timedelta(seconds=30 * 2 ** attempts))

    def _sent(self, row: dict[str, Any], ticket: Ticket, instagram_id: str) -> None:
        answer_id, now = int(row["answer_id"]), self.clock()
        self.store.surges.set_reply(answer_id, ticket.id, SENT, now, instagram_id=instagram_id)
        approver = int(row["approved_by"])
        actor = Actor(workflow.person(self.routing, approver),
                      workflow.ChatScope(self.routing.media_team.chat_id, workflow.MEDIA),
                      self.store.person_name(approver) or str(approver))
        self.tickets.answered(actor, ticket, row["text"], {"group_answer_id": answer_id, "instagram_id": instagram_id})

    def _finish_if_done(self, answer_id: int, group_id: int) -> None:
        """Once nothing is left to post, the media team hears the outcome, with a retry for failures."""
        now = self.clock()
        if not self.store.surges.finish_answer(answer_id, now):
            return
        answer, group = self.store.surges.answer(answer_id), self.store.surges.group(group_id)
        assert answer is not None and group is not None
        counts = self.store.surges.reply_counts(answer_id)
        text, buttons = answer_done_view(answer, group, counts, self.store.surges.failed_replies(answer_id))
        self.store.enqueue(f"ga:{answer_id}:done:{sum(counts.values())}:{counts.get(SENT, 0)}",
                           self.routing.media_team.chat_id, TEXT, now=now,
                           payload={"text": text, "buttons": to_payload(buttons)})

    @staticmethod
    def _target(ticket: Ticket) -> str:
        # A reply to a reply joins the top-level comment's thread on Instagram by itself.
        return ticket.message_id

    def _text(self, ticket: Ticket, text: str) -> str:
        """Each reply names its citizen: personal, and not the same text a thousand times."""
        if ticket.author_username and not text.startswith("@"):
            return f"@{ticket.author_username} {text}"
        return text

    async def _already_posted(self, client: Any, ticket: Ticket, text: str) -> str | None:
        parent = self.store.message(ticket.message_id)
        top = parent.parent_id if parent is not None and parent.parent_id else ticket.message_id
        for reply in await client.replies(top):
            if reply.user_id == client.ig_user_id and reply.text == text:
                return str(reply.id)
        return None
