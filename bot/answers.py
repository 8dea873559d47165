"""Answering on Instagram from Telegram, and hiding spam.

An officer's reply to a ticket becomes a draft; the ministry's voice on
Instagram is the media team's, so the draft goes to their group with *Kirim*
and *Ubah*. *Kirim* posts it (a reply under the comment, or a DM within the
messaging window) and resolves the ticket with the answer and its approver.
A failure is shown with its reason and can be sent again.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

from bot import workflow
from bot.callbacks import Callback, button
from bot.config import ConfigError, RoutingConfig
from bot.instagram import InstagramClient, InstagramError, MessagingWindowClosed, PermissionDenied, TokenInvalid
from bot.pii import mask_pii
from bot.service import Actor, TicketService
from bot.store import Store
from bot.telegram_ui import Rendered
from bot.triage import ACTIVE_STATUSES, SPAM, Ticket
from bot.workflow import Refused

log = logging.getLogger(__name__)

DM_LIMIT, COMMENT_LIMIT = 1000, 2200  # characters Instagram accepts in a DM and in a comment
PENDING, SENT, FAILED = "pending", "sent", "failed"
ClientFor = Callable[[str], Awaitable[InstagramClient]]


def draft_view(draft: Mapping[str, Any], ticket: Ticket, author: str, approver: str | None = None) -> Rendered:
    """The draft as the media team sees it (HTML), with the buttons its state allows."""
    channel = "balasan komentar" if ticket.channel == "comment" else "DM"
    head = f"✍️ <b>Draf jawaban tiket #{ticket.id}</b> ({channel}) dari {html.escape(author)}"
    citizen = mask_pii(ticket.text)  # masked before it is cut: a cut number is no longer recognised
    quote = html.escape(citizen[:200] + ("…" if len(citizen) > 200 else ""))
    lines = [head, f"Pesan warga: <i>{quote}</i>", f"<blockquote>{html.escape(draft['text'])}</blockquote>"]
    d = draft["id"]
    if draft["status"] == SENT:
        lines.append(f"✅ Terkirim ke Instagram oleh {html.escape(approver or 'tim media')}.")
        return Rendered("\n".join(lines))
    if draft["status"] == FAILED:
        lines.append(f"❌ Gagal dikirim: {html.escape(draft['error'] or 'alasan tidak diketahui')}")
        return Rendered("\n".join(lines), [[button("Coba kirim lagi", d, "send"), button("Ubah", d, "edit")]])
    lines.append("Tekan Kirim untuk memublikasikan, atau Ubah lalu balas pesan ini dengan teks pengganti.")
    return Rendered("\n".join(lines), [[button("Kirim", d, "send"), button("Ubah", d, "edit")]])


class Answers:
    def __init__(self, store: Store, routing: RoutingConfig, tickets: TicketService,
                 client_for: ClientFor, clock: Callable[[], datetime]):
        self.store, self.routing, self.tickets, self.client_for, self.clock = store, routing, tickets, client_for, clock

    def _view(self, draft_id: int) -> Rendered:
        draft = self.store.draft(draft_id)
        assert draft is not None
        ticket = self.store.ticket(draft["ticket_id"])
        assert ticket is not None
        author = self.store.person_name(draft["author"]) or str(draft["author"])
        return draft_view(draft, ticket, author, self.store.person_name(draft["approved_by"]))

    def draft(self, actor: Actor, ticket_id: int, text: str) -> int:
        """An officer's answer, sent to the media team for approval."""
        ticket = self.tickets.load(actor, ticket_id, "answer")
        if ticket.status not in ACTIVE_STATUSES:
            raise Refused(f"Tiket #{ticket.id} sudah selesai; jawaban baru tidak dikirim.")
        text = text.strip()
        limit = DM_LIMIT if ticket.channel == "dm" else COMMENT_LIMIT
        if not text:
            raise Refused("Jawaban kosong. Tulis teks jawabannya sebagai balasan pesan tiket.")
        if len(text) > limit:
            raise Refused(f"Jawaban terlalu panjang ({len(text)} karakter); Instagram menerima paling banyak {limit}.")

        def payload(draft_id: int) -> dict[str, Any]:
            view = draft_view({"id": draft_id, "text": text, "status": PENDING, "error": None}, ticket, actor.name)
            return view.payload()

        return self.store.add_draft(ticket.id, text, actor.person.user_id, now=self.clock(),
                                    chat_id=self.routing.media_team.chat_id, payload_for=payload)

    def revise(self, actor: Actor, draft_id: int, text: str) -> Rendered:
        self.tickets.authorize(actor, Callback(draft_id, "edit"))
        if not text.strip():
            raise Refused("Teks pengganti kosong.")
        if not self.store.update_draft(draft_id, {"text": text.strip(), "status": PENDING, "error": None},
                                       now=self.clock(), expect_status=(PENDING, FAILED)):
            raise Refused("Draf ini sudah terkirim dan tidak bisa diubah lagi.")
        return self._view(draft_id)

    async def send(self, actor: Actor, draft_id: int) -> Rendered:
        """Post the approved answer on Instagram and resolve the ticket; a failure is kept and shown."""
        ticket = self.tickets.authorize(actor, Callback(draft_id, "send"))
        draft = self.store.draft(draft_id)
        assert draft is not None
        if draft["status"] == SENT:
            raise Refused("Draf ini sudah terkirim.")
        workflow.answered(ticket, actor.person, self.clock(), draft["text"], {})  # refused when closed meanwhile
        message = self.store.message(ticket.message_id)
        assert message is not None
        try:
            posted = await self._post(ticket, message.parent_id, message.author_id, message.author_username, draft["text"])
        except InstagramError as err:
            reason = failure_reason(err)
            self.store.update_draft(draft_id, {"status": FAILED, "error": reason, "approved_by": actor.person.user_id},
                                    now=self.clock())
            self.store.add_event(ticket.id, actor=actor.tag, kind="answer_failed", now=self.clock(),
                                 detail={"draft_id": draft_id, "error": reason})
            return self._view(draft_id)
        now = self.clock()
        self.store.update_draft(draft_id, {"status": SENT, "approved_by": actor.person.user_id, "sent_at": now,
                                           "instagram_id": posted, "error": None}, now=now)
        self.tickets.answered(actor, ticket, draft["text"], {"draft_id": draft_id, "instagram_id": posted})
        return self._view(draft_id)

    async def _post(self, ticket: Ticket, parent_id: str | None, author_id: str | None,
                    author_username: str | None, text: str) -> str:
        client = await self.client_for(ticket.account)
        if ticket.channel == "dm":
            if not author_id:
                raise InstagramError("pengirim DM tidak diketahui", code=100)
            return await client.send_dm(author_id, text)
        if parent_id:  # Instagram threads are one level deep: answer under the top comment, naming the author
            prefix = f"@{author_username} " if author_username and not text.startswith("@") else ""
            return await client.reply_to_comment(parent_id, prefix + text)
        return await client.reply_to_comment(ticket.message_id, text)

    async def set_hidden(self, actor: Actor, ticket_id: int, hidden: bool) -> str:
        """Hide a spam comment on Instagram, or show it again (media team)."""
        ticket = self.tickets.load(actor, ticket_id, "spam_hide" if hidden else "spam_show")
        if ticket.channel != "comment":
            raise Refused("Hanya komentar yang dapat disembunyikan atau ditampilkan.")
        client = await self.client_for(ticket.account)
        try:
            await client.hide_comment(ticket.message_id, hidden)
        except InstagramError as err:
            raise Refused(f"Instagram menolak: {failure_reason(err)}") from None
        self.store.add_event(ticket.id, actor=actor.tag, kind="hidden" if hidden else "unhidden",
                             now=self.clock(), detail={})
        return f"Komentar tiket #{ticket_id} {'disembunyikan' if hidden else 'ditampilkan lagi'} di Instagram."


def failure_reason(err: InstagramError) -> str:
    """Why Instagram refused, in words the media team can act on."""
    if isinstance(err, MessagingWindowClosed):
        return ("jendela pesan Instagram sudah tertutup (warga terakhir menulis lebih dari 24 jam lalu). "
                "Jawab langsung dari aplikasi Instagram, atau tunggu warga menulis lagi.")
    if isinstance(err, TokenInvalid):
        return "token Instagram akun ini kedaluwarsa atau dicabut; perbarui tokennya."
    if isinstance(err, PermissionDenied):
        return f"izin aplikasi Instagram tidak mencukupi ({err.message})."
    return f"{err.message} (kode {err.code})" if err.code is not None else err.message


def spam_hidden_view(ticket: Ticket, hidden: bool) -> Rendered:
    """The media team's notice that a spam comment was hidden, with Tampilkan to undo."""
    quote = html.escape(mask_pii(ticket.text)[:150])
    if hidden:
        return Rendered(f"🙈 Spam disembunyikan di Instagram (tiket #{ticket.id}, @{html.escape(ticket.author_username or '-')}):\n"
                         f"<i>{quote}</i>", [[button("Tampilkan", ticket.id, "spam_show")]])
    return Rendered(f"👁 Komentar tiket #{ticket.id} ditampilkan lagi:\n<i>{quote}</i>",
                    [[button("Sembunyikan", ticket.id, "spam_hide")]])


async def hide_new_spam(store: Store, routing: RoutingConfig, ticket_ids: list[int], client_for: ClientFor,
                        *, now: datetime) -> int:
    """For accounts with hide_spam on: hide each new spam comment the classifier judged safe to
    hide (spam alone, at a score measured precise on real text), and tell the media team.
    Other spam stays visible, listed in /spam for the media team to judge."""
    hidden = 0
    for ticket in (store.ticket(t) for t in ticket_ids):
        if ticket is None or ticket.status != SPAM or not _hides_spam(routing, ticket):
            continue
        if not _classifier_may_hide(store.ticket_events(ticket.id)):
            continue
        hidden += await _system_hide(store, routing, ticket, True, client_for, now=now)
    return hidden


async def follow_spam_correction(store: Store, routing: RoutingConfig, ticket_id: int, client_for: ClientFor,
                                 *, now: datetime) -> bool:
    """After *Koreksi*, on an account with hide_spam on: a comment corrected to spam is
    hidden like new spam, and a hidden one corrected to not spam is shown again. Returns
    whether anything changed on Instagram."""
    ticket = store.ticket(ticket_id)
    if ticket is None or not _hides_spam(routing, ticket):
        return False
    events = store.ticket_events(ticket_id)
    corrections = [e for e in events if e["kind"] == "corrected"]
    if not corrections:
        return False
    was_spam = "spam" in corrections[-1]["detail"].get("old_labels", [])
    is_spam = ticket.status == SPAM
    if was_spam == is_spam or is_spam == is_hidden(events):
        return False
    return bool(await _system_hide(store, routing, ticket, is_spam, client_for, now=now))


def _classifier_may_hide(events: list[dict[str, Any]]) -> bool:
    created = next((e for e in events if e["kind"] == "created"), None)
    return bool(created and created["detail"].get("may_hide"))


def is_hidden(events: list[dict[str, Any]]) -> bool:
    """Whether the comment is hidden on Instagram now, by the last hide or unhide logged."""
    changes = [e["kind"] for e in events if e["kind"] in ("hidden", "unhidden")]
    return bool(changes) and changes[-1] == "hidden"


def _hides_spam(routing: RoutingConfig, ticket: Ticket) -> bool:
    account = routing.accounts.get(ticket.account)
    return ticket.channel == "comment" and account is not None and account.hide_spam


async def _system_hide(store: Store, routing: RoutingConfig, ticket: Ticket, hidden: bool, client_for: ClientFor,
                       *, now: datetime) -> int:
    """Hide or show a comment for the bot itself; the media team gets a notice with the undo button,
    or an alert when Instagram refuses."""
    what = "menyembunyikan spam" if hidden else "menampilkan lagi komentar"
    try:
        await (await client_for(ticket.account)).hide_comment(ticket.message_id, hidden)
    except (InstagramError, ConfigError) as err:
        reason = failure_reason(err) if isinstance(err, InstagramError) else "token Instagram akun ini belum diatur."
        store.add_alert("hide_spam", f"Gagal {what} tiket #{ticket.id}: {reason}", now=now, account=ticket.account)
        return 0
    store.add_event(ticket.id, actor="system", kind="hidden" if hidden else "unhidden", now=now, detail={})
    view = spam_hidden_view(ticket, hidden)
    key = f"spam-hidden:{ticket.id}" if hidden else f"spam-shown:{ticket.id}"
    key += f":{store.ticket_version(ticket.id)}"
    store.enqueue(key, routing.media_team.chat_id, "text", now=now, ticket_id=ticket.id,
                  payload=view.payload())
    return 1
