"""Delivering the outbox to Telegram: at least once, shown once, within Telegram's limits.

Every send is first a row in the store's outbox (written in the same transaction
as the change that caused it), so nothing is lost across restarts. This module
reads due rows, keeps under Telegram's flood limits so that the API never has
to answer 429, and turns a backlog bigger than a group can take in a minute
into batch messages ("12 tiket baru untuk PFM") instead of delaying it for hours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Deque, Mapping, Protocol, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.store import Store
from bot.telegram_ui import Button, Rendered

log = logging.getLogger(__name__)

# Outbox kinds
TICKET, MIRROR, EDIT, TEXT, DOCUMENT, PHOTO = "ticket", "mirror", "edit", "text", "document", "photo"
BATCHABLE = (TICKET, MIRROR)


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits for one bot. Tests shrink `group_period` to run fast."""

    overall_per_second: int = 30
    group_per_period: int = 20
    group_period: float = 60.0
    private_per_second: int = 1
    batch_size: int = 20  # tickets in one batch message
    safety: float = 0.1  # seconds added to each wait, so clock jitter never crosses a limit


class Renderer(Protocol):
    """Turns store rows into Telegram messages; built by the app from telegram_ui."""

    def ticket(self, ticket_id: int, kind: str) -> Rendered | None: ...

    def batch(self, chat_id: int, ticket_ids: Sequence[int]) -> Rendered: ...


class FloodGuard:
    """Sliding windows of past sends, overall and per chat (monotonic clock)."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits, self.clock = limits, clock
        self.overall: Deque[float] = deque()
        self.per_chat: dict[int, Deque[float]] = defaultdict(deque)

    def _window(self, chat_id: int) -> tuple[int, float]:
        if chat_id < 0:
            return self.limits.group_per_period, self.limits.group_period
        return self.limits.private_per_second, 1.0

    def wait(self, chat_id: int) -> float:
        """Seconds until one more message to this chat keeps every limit."""
        now = self.clock()
        waits = [self._wait_in(self.overall, self.limits.overall_per_second, 1.0, now)]
        count, period = self._window(chat_id)
        waits.append(self._wait_in(self.per_chat[chat_id], count, period, now))
        longest = max(waits)
        return longest + self.limits.safety if longest > 0 else 0.0

    def room(self, chat_id: int) -> int:
        """How many more messages this chat can take in its current window."""
        now = self.clock()
        count, period = self._window(chat_id)
        window = self.per_chat[chat_id]
        return max(0, count - sum(1 for t in window if t > now - period))

    def record(self, chat_id: int) -> None:
        now = self.clock()
        self.overall.append(now)
        self.per_chat[chat_id].append(now)

    @staticmethod
    def _wait_in(window: Deque[float], count: int, period: float, now: float) -> float:
        while window and window[0] <= now - period:
            window.popleft()
        if len(window) < count:
            return 0.0
        return window[len(window) - count] + period - now


@dataclass
class DeliveryReport:
    sent: int = 0
    batched: int = 0
    failed: int = 0
    retry_after: list[float] = field(default_factory=list)


class Deliverer:
    """Sends due outbox rows through one python-telegram-bot `Bot`."""

    def __init__(self, bot: Any, store: Store, renderer: Renderer, *, limits: Limits = Limits(),
                 clock: Callable[[], datetime] | None = None,
                 on_alert: Callable[[int, str], None] | None = None):
        self.bot, self.store, self.renderer, self.limits = bot, store, renderer, limits
        self.guard = FloodGuard(limits)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.on_alert = on_alert
        self.wake = asyncio.Event()
        self.paused_until = 0.0  # monotonic; set by a 429, which pauses every send

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stop` is set; an in-flight send finishes before returning."""
        while not stop.is_set():
            try:
                await self.deliver_due(stop=stop)
            except Exception:  # one bad row must not stop delivery; it is logged in full once
                log.exception("delivery pass failed")
            if self.wake.is_set():
                continue
            waiter = asyncio.ensure_future(self.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, stopper], timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def deliver_due(self, stop: asyncio.Event | None = None) -> DeliveryReport:
        report = DeliveryReport()
        queues = self._plan(self.store.due_outbox(self.clock(), limit=5000))
        self.wake.clear()
        while queues and not (stop and stop.is_set()):
            if self.wake.is_set():
                break  # new rows (a button press's edit, say) must not wait behind a long backlog: plan again
            progressed, shortest = False, 60.0
            for chat_id in list(queues):
                wait = max(self.guard.wait(chat_id), self.paused_until - time.monotonic())
                if wait > 0:
                    shortest = min(shortest, wait)
                    continue
                await self._send(chat_id, queues[chat_id].popleft(), report)
                progressed = True
                if not queues[chat_id]:
                    del queues[chat_id]
            if not progressed and queues:
                await self._sleep(shortest, stop)
        return report

    async def _sleep(self, seconds: float, stop: asyncio.Event | None) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _plan(self, rows: Sequence[dict[str, Any]]) -> dict[int, Deque[list[dict[str, Any]]]]:
        """Group due rows by chat; where new tickets outnumber what the chat can take
        in one window, pack them into batch messages of up to `batch_size`."""
        by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_chat[self.store.chat_alias(row["chat_id"])].append(row)
        queues: dict[int, Deque[list[dict[str, Any]]]] = {}
        for chat_id, chat_rows in by_chat.items():
            fresh = [r for r in chat_rows if r["kind"] in BATCHABLE and not r["payload"].get("single")]
            fresh_ids = {r["id"] for r in fresh}
            others = [[r] for r in chat_rows if r["id"] not in fresh_ids]
            if chat_id < 0 and len(fresh) > max(self.guard.room(chat_id), 1):
                size = self.limits.batch_size
                items = others + [fresh[i:i + size] for i in range(0, len(fresh), size)]
            else:
                items = others + [[r] for r in fresh]
            items.sort(key=lambda group: group[0]["id"])
            queues[chat_id] = deque(items)
        return queues

    async def _send(self, chat_id: int, group: list[dict[str, Any]], report: DeliveryReport) -> None:
        first = group[0]
        shows_ticket = len(group) == 1 and first["kind"] in BATCHABLE
        version = self.store.ticket_version(first["ticket_id"]) if shows_ticket else 0
        try:
            try:
                message_id = await self._call(chat_id, group)
            finally:
                # Counted when the answer is back: Telegram saw the request no later than
                # that, so the window we keep is never shorter than the one it keeps.
                self.guard.record(chat_id)
        except RetryAfter as err:
            seconds = _seconds(err.retry_after)
            report.retry_after.append(seconds)
            self.paused_until = time.monotonic() + seconds  # Telegram asks the whole bot to wait
            self._retry(group, "429", seconds)
            return
        except ChatMigrated as err:
            log.warning("chat %s became supergroup %s", chat_id, err.new_chat_id)
            self.store.add_chat_alias(chat_id, int(err.new_chat_id), self.clock())
            return  # the rows now point at the new chat and go out on the next pass
        except BadRequest as err:
            if "not modified" in str(err).lower():
                message_id = None
            else:
                self._fail(chat_id, group, f"Telegram menolak pesan ke grup {chat_id}: {err}", report, hours=1)
                return
        except Forbidden as err:
            self._fail(chat_id, group, f"Bot tidak dapat mengirim ke grup {chat_id}: {err}", report, hours=1)
            return
        except (TimedOut, NetworkError) as err:
            self._retry(group, f"jaringan: {err}", 5 * (1 + int(first.get("attempts") or 0)))
            return
        now = self.clock()
        if len(group) > 1:
            self.store.mark_batched([r["id"] for r in group], message_id, now)
            report.batched += len(group)
        else:
            stale = shows_ticket and message_id is not None and self.store.ticket_version(first["ticket_id"]) != version
            self.store.mark_sent(first["id"], message_id, now,
                                 then_enqueue=[self._catch_up(chat_id, first, message_id)] if stale else ())
        report.sent += 1

    @staticmethod
    def _catch_up(chat_id: int, row: Mapping[str, Any], message_id: int | None) -> tuple[Any, ...]:
        """An edit for a message rendered before a change that landed while it was in
        flight: the change found no sent message to edit, so this one must catch up."""
        key = f"catch-up:{row['id']}"
        return key, chat_id, EDIT, row["ticket_id"], {"message_id": message_id, "shows": row["kind"]}

    async def _call(self, chat_id: int, group: list[dict[str, Any]]) -> int | None:
        first = group[0]
        kind, payload = first["kind"], first["payload"]
        if len(group) > 1:
            return await self._send_rendered(chat_id, self.renderer.batch(chat_id, [r["ticket_id"] for r in group]))
        if kind in BATCHABLE:
            rendered = self.renderer.ticket(first["ticket_id"], kind)
            return None if rendered is None else await self._send_rendered(chat_id, rendered)
        if kind == EDIT:
            await self._edit(chat_id, first["ticket_id"], payload)
            return None
        if kind == TEXT:
            buttons = [[Button(text, data) for text, data in row] for row in payload.get("buttons", ())]
            return await self._send_rendered(chat_id, Rendered(payload["text"], buttons))
        if kind in (DOCUMENT, PHOTO):
            return await self._send_file(chat_id, kind, payload)
        raise ValueError(f"unknown outbox kind {kind}")

    async def _send_rendered(self, chat_id: int, rendered: Rendered) -> int:
        message = await self.bot.send_message(
            chat_id=chat_id, text=rendered.text, parse_mode="HTML",
            reply_markup=keyboard(rendered.buttons), disable_web_page_preview=True)
        return int(message.message_id)

    async def _send_file(self, chat_id: int, kind: str, payload: Mapping[str, Any]) -> int:
        with open(payload["path"], "rb") as handle:
            data = InputFile(handle, filename=payload.get("filename"))
            if kind == PHOTO:
                message = await self.bot.send_photo(chat_id=chat_id, photo=data, caption=payload.get("caption"),
                                                    parse_mode="HTML")
            else:
                message = await self.bot.send_document(chat_id=chat_id, document=data,
                                                       caption=payload.get("caption"), parse_mode="HTML")
        return int(message.message_id)

    async def _edit(self, chat_id: int, ticket_id: int, payload: Mapping[str, Any]) -> None:
        """Show a ticket's current state in a message that already shows it."""
        rendered = self.renderer.ticket(ticket_id, payload["shows"])
        if rendered is None:
            return
        try:
            await self.bot.edit_message_text(
                chat_id=chat_id, message_id=payload["message_id"], text=rendered.text, parse_mode="HTML",
                reply_markup=keyboard(rendered.buttons), disable_web_page_preview=True)
        except BadRequest as err:
            # Already showing this state, or deleted by someone: nothing left to do.
            if "not modified" not in str(err).lower() and "not found" not in str(err).lower():
                raise

    def _retry(self, group: list[dict[str, Any]], reason: str, seconds: float) -> None:
        retry_at = self.clock() + timedelta(seconds=seconds)
        for row in group:
            self.store.mark_failed(row["id"], reason, retry_at)

    def _fail(self, chat_id: int, group: list[dict[str, Any]], reason: str, report: DeliveryReport,
              hours: float) -> None:
        log.error("outbox %s: %s", [r["id"] for r in group], reason)
        report.failed += len(group)
        self._retry(group, reason, hours * 3600)
        if self.on_alert:
            self.on_alert(chat_id, reason)


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row] for row in rows])


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
