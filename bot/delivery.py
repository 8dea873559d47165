"""Delivering the outbox to Telegram: at least once, shown once, within Telegram's limits.

Every send is first a row in the store's outbox (written in the same transaction
as the change that caused it), so nothing is lost across restarts. This module
reads due rows, keeps under Telegram's flood limits so that the API never has
to answer 429, and turns a backlog bigger than a group can take in a minute
into batch messages ("12 tiket baru untuk PFM") instead of delaying it for hours.

A send is recorded the moment Telegram's answer arrives: `AnswerHookRequest` hands
the raw answer to the delivery in flight before python-telegram-bot reads it, and
the row is marked sent in that same step, so a crash can duplicate only a message
whose answer was still on its way (the Bot API has no idempotency key, so that
round trip is the least a restart can repeat). Every row fails on its own: a row
that cannot be rendered or sent is retried later with backoff while the rows
behind it go out, and a message whose answer arrived but could not be read is
recorded as sent-unknown (not sent again) and reported to the media team.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Deque, Mapping, Protocol, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from bot.store import CARD, DOCUMENT, EDIT, MIRROR, PHOTO, TEXT, TICKET, Store
from bot.callbacks import Button, from_payload
from bot.telegram_ui import Rendered

log = logging.getLogger(__name__)

# Outbox kinds
BATCHABLE = (TICKET, MIRROR)
NO_CHAT = 0  # passed to on_alert for a problem of one row, not of its group (so the media team hears of it)
MAX_BACKOFF = 3600.0  # seconds: a row that keeps failing is tried again at least hourly

# The send in flight in this task, told of Telegram's answer by AnswerHookRequest.
_IN_FLIGHT: ContextVar["_InFlight | None"] = ContextVar("delivery_in_flight", default=None)


class AnswerHookRequest(HTTPXRequest):
    """PTB's HTTP transport, which also hands each answer to the delivery in flight (if
    any, in this task) as soon as it arrives, before PTB parses it."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, body = await super().do_request(*args, **kwargs)
        flight = _IN_FLIGHT.get()
        if flight is not None:
            flight.answer(status, body)
        return status, body


def telegram_request(read_timeout: float) -> AnswerHookRequest:
    """The request object for the bot that delivers (ApplicationBuilder's pool size)."""
    return AnswerHookRequest(connection_pool_size=256, read_timeout=read_timeout)


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

    def card(self, surge_id: int) -> Rendered | None: ...


class CardNotSentYet(Exception):
    """An edit of a surge card whose first send has not been recorded yet: tried again shortly."""


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
        flight = _InFlight(self, chat_id, group, self.store.ticket_version(first["ticket_id"]) if shows_ticket else None)
        token = _IN_FLIGHT.set(flight)
        try:
            try:
                message_id = await self._call(chat_id, group)
            finally:
                _IN_FLIGHT.reset(token)
                # Counted when the answer is back: Telegram saw the request no later than
                # that, so the window we keep is never shorter than the one it keeps.
                self.guard.record(chat_id)
        except Exception as err:  # every row fails on its own; nothing here may stop the pass
            self._failed(flight, err, report)
            return
        if not flight.recorded:  # a bot without AnswerHookRequest, an edit, or nothing sent at all
            flight.record(message_id)
        report.sent += 1
        if len(group) > 1:
            report.batched += len(group)
        if flight.unreadable:
            self._alert_unreadable(flight)

    def _record(self, flight: "_InFlight", message_id: int | None, note: str | None = None) -> None:
        """Mark the rows sent: called with Telegram's answer, before anything else is awaited."""
        group, first, now = flight.group, flight.group[0], self.clock()
        if len(group) > 1:
            self.store.mark_batched([r["id"] for r in group], message_id, now, note=note)
            return
        if first["kind"] == EDIT:
            message_id = None  # an edit shows an existing message; the row that sent it keeps its id
        stale = (flight.version is not None and message_id is not None
                 and self.store.ticket_version(first["ticket_id"]) != flight.version)
        self.store.mark_sent(first["id"], message_id, now, note=note,
                             then_enqueue=[self._catch_up(flight.chat_id, first, message_id)] if stale else ())

    def _failed(self, flight: "_InFlight", err: Exception, report: DeliveryReport) -> None:
        chat_id, group, first = flight.chat_id, flight.group, flight.group[0]
        if flight.recorded:
            # Telegram answered and the send is recorded (with its message id when the answer
            # had one); only the client failed on the answer afterwards.
            log.warning("outbox %s: sent and recorded, then the client failed on the answer: %r", _ids(group), err)
            report.sent += 1
            if flight.unreadable:
                self._alert_unreadable(flight)
            return
        if isinstance(err, RetryAfter):
            seconds = _seconds(err.retry_after)
            report.retry_after.append(seconds)
            self.paused_until = time.monotonic() + seconds  # Telegram asks the whole bot to wait
            self._retry(group, "429", seconds)
        elif isinstance(err, CardNotSentYet):
            self._retry(group, "kartu lonjakan belum terkirim", 3)
        elif isinstance(err, ChatMigrated):
            log.warning("chat %s became supergroup %s", chat_id, err.new_chat_id)
            self.store.add_chat_alias(chat_id, int(err.new_chat_id), self.clock())
            # the rows now point at the new chat and go out on the next pass
        elif isinstance(err, BadRequest) and "not modified" in str(err).lower():
            flight.record(None)
            report.sent += 1
        elif isinstance(err, BadRequest):
            self._fail(chat_id, group, f"Telegram menolak pesan ke grup {chat_id}: {err}", report, hours=1)
        elif isinstance(err, Forbidden):
            self._fail(chat_id, group, f"Bot tidak dapat mengirim ke grup {chat_id}: {err}", report, hours=1)
        elif isinstance(err, (TimedOut, NetworkError)):
            self._retry(group, f"jaringan: {err}", 5 * (1 + int(first.get("attempts") or 0)))
        elif flight.answered or (flight.calling and not isinstance(getattr(self.bot, "request", None), AnswerHookRequest)):
            # An answer came (or may have come: a bot whose answers we cannot see) and could not
            # be read: the message may well be in the chat. Sending it again would show it twice.
            flight.record_unknown(f"{type(err).__name__}: {err}")
            report.sent += 1
            self._alert_unreadable(flight)
        else:
            # Nothing was sent: a rendering bug, or no answer came (text the client cannot encode).
            attempts = int(first.get("attempts") or 0)
            seconds = min(MAX_BACKOFF, 10.0 * 2 ** attempts)
            reason = f"{type(err).__name__}: {err}"
            log.error("outbox %s: not sent, retried in %.0f s: %s", _ids(group), seconds, reason, exc_info=err)
            report.failed += len(group)
            self._retry(group, reason, seconds)
            if self.on_alert:
                tickets = _tickets(group)
                self.on_alert(NO_CHAT, f"Pesan ke grup {chat_id} (antrean {_ids(group)}{tickets}) gagal disiapkan: "
                                       f"{reason[:200]}. Dicoba lagi dalam {_duration(seconds)}; pesan lain tetap dikirim.")

    def _alert_unreadable(self, flight: "_InFlight") -> None:
        log.error("outbox %s: Telegram's answer could not be read (%s); recorded as sent, not sent again",
                  _ids(flight.group), flight.unreadable)
        if self.on_alert:
            self.on_alert(NO_CHAT, f"Pesan ke grup {flight.chat_id} (antrean {_ids(flight.group)}{_tickets(flight.group)}) "
                                   f"sudah dikirim, tetapi jawaban Telegram tidak terbaca ({(flight.unreadable or '')[:200]}). "
                                   "Pesan itu tidak dikirim ulang agar tidak tampil dua kali; periksa grup itu, dan bila "
                                   "pesannya tidak ada, tampilkan tiketnya dengan /tiket NOMOR.")

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
        if kind == CARD:
            rendered = self.renderer.card(payload["surge_id"])
            return None if rendered is None else await self._send_rendered(chat_id, rendered)
        if kind == EDIT and payload.get("shows") == "card":
            await self._edit_card(chat_id, payload)
            return None
        if kind == EDIT:
            await self._edit(chat_id, first["ticket_id"], payload)
            return None
        if kind == TEXT:
            buttons = from_payload(payload.get("buttons"))
            return await self._send_rendered(chat_id, Rendered(payload["text"], buttons))
        if kind in (DOCUMENT, PHOTO):
            return await self._send_file(chat_id, kind, payload)
        raise ValueError(f"unknown outbox kind {kind}")

    async def _send_rendered(self, chat_id: int, rendered: Rendered) -> int:
        _calling()
        message = await self.bot.send_message(
            chat_id=chat_id, text=rendered.text, parse_mode="HTML",
            reply_markup=keyboard(rendered.buttons), disable_web_page_preview=True)
        return int(message.message_id)

    async def _send_file(self, chat_id: int, kind: str, payload: Mapping[str, Any]) -> int:
        with open(payload["path"], "rb") as handle:
            data = InputFile(handle, filename=payload.get("filename"))
            _calling()
            if kind == PHOTO:
                message = await self.bot.send_photo(chat_id=chat_id, photo=data, caption=payload.get("caption"),
                                                    parse_mode="HTML")
            else:
                message = await self.bot.send_document(chat_id=chat_id, document=data,
                                                       caption=payload.get("caption"), parse_mode="HTML")
        return int(message.message_id)

    async def _edit(self, chat_id: int, ticket_id: int, payload: Mapping[str, Any]) -> None:
        """Show a ticket's current state in a message that already shows it."""
        await self._redraw(chat_id, payload["message_id"], self.renderer.ticket(ticket_id, payload["shows"]))

    async def _edit_card(self, chat_id: int, payload: Mapping[str, Any]) -> None:
        """Show a surge card's current state in the message that first showed it."""
        sent = self.store.sent_message(payload["card_key"])
        if sent is None or sent["telegram_message_id"] is None:
            raise CardNotSentYet(payload["card_key"])
        await self._redraw(chat_id, sent["telegram_message_id"], self.renderer.card(payload["surge_id"]))

    async def _redraw(self, chat_id: int, message_id: int, rendered: Rendered | None) -> None:
        if rendered is None:
            return
        _calling()
        try:
            await self.bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=rendered.text, parse_mode="HTML",
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


class _InFlight:
    """One send in flight: its rows, and whether Telegram's answer came and was recorded."""

    def __init__(self, deliverer: Deliverer, chat_id: int, group: list[dict[str, Any]], version: int | None):
        self.deliverer, self.chat_id, self.group, self.version = deliverer, chat_id, group, version
        self.calling = False  # rendered, and handed to the bot
        self.answered = False  # an HTTP answer arrived for this send
        self.recorded = False  # the rows are marked sent
        self.unreadable: str | None = None  # why a successful answer could not be read

    def answer(self, status: int, body: bytes) -> None:
        """Telegram's raw answer, straight from the transport: record a success at once.
        Never raises (PTB would turn it into a network error, and the row would be sent again)."""
        self.answered = True
        if status != 200 or self.recorded:
            return  # an error answer: nothing was shown, PTB raises it and `_failed` handles it
        try:
            data = json.loads(body)
            if data.get("ok") is not True:
                raise ValueError("no ok: true")
            result: Any = data["result"]
            # true: an edit of an inline message, or a method that answers true
            message_id = None if result is True else int(result["message_id"])
        except Exception as err:  # noqa: BLE001 - any unreadable answer is recorded the same way
            self.record_unknown(f"{type(err).__name__}: {str(err)[:100]} in {body[:120]!r}")
            return
        self.record(message_id)

    def record(self, message_id: int | None) -> None:
        try:
            self.deliverer._record(self, message_id)
            self.recorded = True
        except Exception:  # the store failed: `_send` tries again once the call returns
            log.exception("outbox %s: recording the send failed", _ids(self.group))

    def record_unknown(self, reason: str) -> None:
        self.unreadable = reason
        try:
            self.deliverer._record(self, None, note=f"terkirim, jawaban tidak terbaca: {reason}")
            self.recorded = True
        except Exception:
            log.exception("outbox %s: recording the send failed", _ids(self.group))


def _calling() -> None:
    """Mark the send in flight as handed to the bot: from here on it may reach Telegram."""
    flight = _IN_FLIGHT.get()
    if flight is not None:
        flight.calling = True


def _ids(group: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"#{r['id']}" for r in group[:5]) + (f" dan {len(group) - 5} lainnya" if len(group) > 5 else "")


def _tickets(group: Sequence[Mapping[str, Any]]) -> str:
    ids = [r["ticket_id"] for r in group if r.get("ticket_id")]
    if not ids:
        return ""
    return "; tiket " + ", ".join(f"#{t}" for t in ids[:5]) + (f" dan {len(ids) - 5} lainnya" if len(ids) > 5 else "")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} detik" if seconds < 60 else f"{seconds / 60:.0f} menit"


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row] for row in rows])


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
