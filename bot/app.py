"""The Telegram application: every handler registered here, in order, in one function.

Handlers only adapt: parse the update, call the ticket service, render with
`telegram_ui`, answer. Tests build the application with the same function.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Sequence

from telegram import Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import surges
from bot import telegram_ui as ui
from bot.answers import Answers, follow_spam_correction, spam_hidden_view
from bot.callbacks import Callback
from bot.callbacks import parse as parse_callback
from bot.config import ConfigError, Settings
from bot.delivery import Deliverer, Limits, keyboard, telegram_request
from bot.group_replies import GroupReplier
from bot.groups import Group, GroupService
from bot.instagram import InstagramClient
from bot.jobs import deliver_alerts
from bot.service import Actor, TicketService
from bot.store import Store
from bot.tokens import current_token
from bot.triage import Ticket
from bot.workflow import Refused, chat_scope

log = logging.getLogger(__name__)

# A send that times out may still have been shown, and is sent again: a duplicate in the
# group. PTB's default of 5 s is shorter than a busy Bot API sometimes takes, so wait longer.
SEND_READ_TIMEOUT = 30.0


@dataclass
class Services:
    """What the handlers and jobs share; built once at start-up."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    limits: Limits = field(default_factory=Limits)
    reply_gap: float | None = None  # seconds between group replies; None: routing.yaml's pace

    def __post_init__(self) -> None:
        self.tickets = TicketService(self.store, self.settings.routing, self.clock)
        self.renderer = TicketRenderer(self.store, self.settings, self.clock)
        self._instagram: dict[str, tuple[str, InstagramClient]] = {}  # account -> (token, client)
        self.answers = Answers(self.store, self.settings.routing, self.tickets, self.instagram, self.clock)
        self.groups = GroupService(self.store, self.settings.routing, self.tickets, self.clock)
        self.replier = GroupReplier(self.store, self.settings.routing, self.tickets, self.instagram, self.clock,
                                    seconds_per_reply=self.reply_gap)

    async def instagram(self, account: str) -> Any:
        """One long-lived Instagram client per account and token, opened on first use
        and replaced once the weekly refresh has stored a new token."""
        token = current_token(self.settings, self.store, account, self.clock())
        held = self._instagram.get(account)
        if held is None or held[0] != token:
            if held is not None:
                await held[1].aclose()
            acc = self.settings.routing.accounts[account]
            self._instagram[account] = (token, InstagramClient(
                access_token=token, ig_user_id=acc.instagram_user_id, base_url=self.settings.instagram_graph_url))
        return self._instagram[account][1]

    async def aclose(self) -> None:
        for _, client in self._instagram.values():
            await client.aclose()
        self._instagram.clear()


class TicketRenderer:
    """Renders stored tickets for the outbox: full in unit groups, compact for the media team."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime]):
        self.store, self.settings, self.clock = store, settings, clock
        self.tz = settings.routing.timezone

    def names(self, ticket: Ticket) -> tuple[str, str | None]:
        account = self.settings.routing.accounts.get(ticket.account)
        if account is None:
            return ticket.account, ticket.unit
        unit = account.units.get(ticket.unit or "")
        return account.name, (f"{unit.name} ({ticket.unit.upper()})" if unit and ticket.unit else ticket.unit)

    def people(self, ticket: Ticket) -> dict[int, str]:
        ids = [i for i in (ticket.acknowledged_by, ticket.resolved_by) if i is not None]
        return {i: self.store.person_name(i) or str(i) for i in ids}

    def ticket(self, ticket_id: int, kind: str, *, masked: bool = True) -> ui.Rendered | None:
        ticket = self.store.ticket(ticket_id)
        if ticket is None:
            return None
        account_name, unit_name = self.names(ticket)
        common = dict(account_name=account_name, unit_name=unit_name, tz=self.tz,
                      people=self.people(ticket), now=self.clock())
        if kind == "mirror":
            return ui.mirror_message(ticket, **common)  # type: ignore[arg-type]
        return ui.ticket_message(ticket, masked=masked, **common)  # type: ignore[arg-type]

    def card(self, surge_id: int) -> ui.Rendered | None:
        from bot.surge_job import render_card

        card = render_card(self.settings, self.store, surge_id)
        return None if card is None else ui.Rendered(card[0], card[1])

    def batch(self, chat_id: int, ticket_ids: Sequence[int]) -> ui.Rendered:
        tickets = [t for t in (self.store.ticket(i) for i in ticket_ids) if t is not None]
        title = "tim media" if chat_id == self.store.chat_alias(self.settings.routing.media_team.chat_id) else (
            self.names(tickets[0])[1] or "unit" if tickets else "unit")
        return ui.batch_message(tickets, title, self.tz, now=self.clock())


def build_application(settings: Settings, services: Services) -> Application:  # type: ignore[type-arg]
    """The whole bot: handlers in the order they must see updates."""
    if not settings.telegram_token:
        raise ConfigError("set TELEGRAM_BOT_TOKEN to the token BotFather gave you")
    app = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(f"{settings.telegram_api_url}/bot")
        .base_file_url(f"{settings.telegram_api_url}/file/bot")
        .request(telegram_request(SEND_READ_TIMEOUT))  # records each send the moment Telegram answers
        .build()
    )
    app.bot_data["services"] = services
    # /id answers in any chat, before unknown chats are dropped: it is how routing.yaml's ids are found.
    app.add_handler(CommandHandler("id", _cmd_id), group=-2)
    app.add_handler(TypeHandler(Update, _ignore_unknown_chats), group=-1)
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, _on_migrate), group=-1)
    app.add_handler(CommandHandler(["antrian"], _cmd_queue))
    app.add_handler(CommandHandler(["tiket"], _cmd_ticket))
    app.add_handler(CommandHandler(["cari"], _cmd_search))
    app.add_handler(CommandHandler(["spam"], _cmd_spam))
    app.add_handler(CommandHandler(["templat"], _cmd_templates))
    app.add_handler(CommandHandler(["kelompok"], _cmd_group))
    app.add_handler(CommandHandler(["jawabkelompok"], _cmd_group_answer))
    app.add_handler(CommandHandler(["keluarkan"], _cmd_take_out))
    app.add_handler(CommandHandler(["bantuan", "start", "help"], _cmd_help))
    app.add_handler(CallbackQueryHandler(_on_button))
    app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, _on_reply))
    app.add_error_handler(_on_error)
    return app


def make_deliverer(app: Application, services: Services) -> Deliverer:  # type: ignore[type-arg]
    media_chat = services.settings.routing.media_team.chat_id

    def alert(chat_id: int, reason: str) -> None:
        # A failing media-team group cannot be told about itself; the log has it.
        if services.store.chat_alias_reverse(chat_id) == media_chat:
            return
        # Every queued row for a broken group fails alike: one alert an hour per group is enough.
        kind, now = f"delivery:{chat_id}", services.clock()
        if not services.store.has_recent_alert(kind, None, now - timedelta(hours=1)):
            services.store.add_alert(kind, reason, now=now)
            deliver_alerts(services.settings, services.store, now=now)

    return Deliverer(app.bot, services.store, services.renderer, limits=services.limits,
                     clock=services.clock, on_alert=alert)


async def deliver_outbox(settings: Settings, store: Store, *, now: datetime, limits: Limits = Limits()) -> Any:
    """Send what is due in the outbox once, with a plain Bot (for CLI jobs like `triage remind --send`)."""
    from telegram import Bot

    if not settings.telegram_token:
        raise ConfigError("set TELEGRAM_BOT_TOKEN to send to Telegram")
    deliver_alerts(settings, store, now=now)
    services = Services(settings, store, lambda: now, limits)
    bot = Bot(settings.telegram_token, base_url=f"{settings.telegram_api_url}/bot",
              base_file_url=f"{settings.telegram_api_url}/file/bot",
              request=telegram_request(SEND_READ_TIMEOUT))
    async with bot:
        deliverer = Deliverer(bot, store, services.renderer, limits=limits, clock=lambda: now)
        return await deliverer.deliver_due()


# -- plumbing -------------------------------------------------------------------


def _services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]  # type: ignore[no-any-return]


def _actor(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Actor | None:
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return None
    return _services(context).tickets.actor(user.id, chat.id, user.full_name, user.username)


async def _ignore_unknown_chats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Chats routing.yaml does not name get no answer at all (the bot may be added anywhere)."""
    chat = update.effective_chat
    if chat is None:
        raise ApplicationHandlerStop
    services = _services(context)
    if chat_scope(services.settings.routing, services.store.chat_alias_reverse(chat.id)) is None:
        if update.message and update.message.migrate_from_chat_id:
            return  # the new id of a known group announces itself: let _on_migrate learn it
        log.info("ignoring update from unknown chat %s", chat.id)
        raise ApplicationHandlerStop


ANONYMOUS_ADMIN = 1087968824  # Telegram's "GroupAnonymousBot": an admin writing as the group


async def _cmd_id(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/id: a group's chat id and the sender's user id, for routing.yaml. Answers in any chat
    (the ids are the asker's own); a command reaches the bot even with privacy mode on."""
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    if message is None or chat is None:
        raise ApplicationHandlerStop
    lines = []
    if chat.type != "private":
        lines.append(f"ID grup ini: <code>{chat.id}</code> (tulis sebagai <code>chat_id</code> di routing.yaml)")
    if user is None or user.id == ANONYMOUS_ADMIN or message.sender_chat is not None:
        lines.append("Anda mengirim sebagai admin anonim, jadi ID pribadi Anda tidak terlihat. "
                     "Kirim /id kepada bot ini di chat pribadi untuk mengetahuinya.")
    else:
        lines.append(f"ID Telegram {html.escape(user.full_name)}: <code>{user.id}</code> (tulis di "
                     "<code>officers</code> unitnya atau <code>members</code> tim media/pimpinan di routing.yaml)")
    await message.reply_html("\n".join(lines))
    raise ApplicationHandlerStop


async def _on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    services = _services(context)
    if message.migrate_to_chat_id:
        services.store.add_chat_alias(message.chat.id, message.migrate_to_chat_id, services.clock())
    elif message.migrate_from_chat_id:
        services.store.add_chat_alias(message.migrate_from_chat_id, message.chat.id, services.clock())
    raise ApplicationHandlerStop


async def _reply(update: Update, rendered: ui.Rendered) -> None:
    if update.effective_message:
        await update.effective_message.reply_html(rendered.text, reply_markup=keyboard(rendered.buttons),
                                                  disable_web_page_preview=True)


async def _refuse_command(update: Update, reason: str) -> None:
    text = (update.effective_message and update.effective_message.text) or ""
    # Only the command word: its arguments may be a citizen's NIK someone searched for.
    log.info("refused %s from user %s in chat %s: %s", text.split(maxsplit=1)[0] if text else "-",
             update.effective_user and update.effective_user.id, update.effective_chat and update.effective_chat.id, reason)
    if update.effective_message:
        await update.effective_message.reply_text(reason)


# -- commands -------------------------------------------------------------------


async def _cmd_queue(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    try:
        tickets = services.tickets.queue(actor)
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    title = "Antrian semua unit" if actor.scope.sees_everything else "Antrian unit " + ", ".join(
        u.upper() for _, u in sorted(actor.scope.units))
    groups = {g: (services.store.surges.group(g) or {}).get("title") or ""
              for g in {t.group_id for t in tickets if t.group_id}}
    await _reply(update, ui.queue_message(tickets, services.settings.routing.timezone, title, now=services.clock(),
                                          people=_people(services, tickets), show_unit=actor.scope.sees_everything,
                                          groups=groups))


async def _cmd_ticket(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    if not context.args or not context.args[0].lstrip("#").isdigit():
        await _refuse_command(update, "Tulis nomor tiketnya, misalnya: /tiket 123")
        return
    try:
        _require_known(actor)
        ticket = services.tickets.load(actor, int(context.args[0].lstrip("#")))
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    account_name, unit_name = services.renderer.names(ticket)
    unit_names = {k: u.name for k, u in services.settings.routing.accounts[ticket.account].units.items()}
    events = services.store.ticket_events(ticket.id)
    actors = {int(e["actor"]) for e in events if str(e["actor"]).isdigit()}
    people = {i: services.store.person_name(i) or str(i) for i in actors} | _people(services, [ticket])
    rendered = ui.ticket_detail(ticket, events, services.settings.routing.timezone, account_name=account_name,
                                unit_name=unit_name, unit_names=unit_names, people=people, now=services.clock())
    await _reply(update, rendered)


async def _cmd_search(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    query = " ".join(context.args or []).strip()
    if len(query) < 3:
        await _refuse_command(update, "Tulis kata yang dicari (minimal 3 huruf), misalnya: /cari bansos")
        return
    try:
        _require_known(actor)
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    found = services.tickets.search(actor, query)
    await _reply(update, ui.search_results(found, query, services.settings.routing.timezone))


async def _cmd_spam(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    if not actor.person.sees_everything:
        await _refuse_command(update, ui.refusal("not_media_team"))
        return
    # A unit group sees its own ministry's spam only, whoever asks there.
    accounts = [None] if actor.scope.sees_everything else sorted({a for a, _ in actor.scope.units})
    spam = sorted((t for account in accounts
                   for t in services.store.tickets(status="spam", account=account, order="t.id DESC", limit=50)),
                  key=lambda t: -t.id)[:50]
    await _reply(update, ui.spam_list(spam, services.settings.routing.timezone))


async def _cmd_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    await _reply(update, ui.help_text(actor.person.role or "officer",
                                      working_days=services.settings.routing.deadline.working_days))


def _require_known(actor: Actor) -> None:
    if not actor.person.known:
        raise Refused(ui.refusal("not_registered"))


def _people(services: Services, tickets: Sequence[Ticket]) -> dict[int, str]:
    ids = {i for t in tickets for i in (t.acknowledged_by, t.resolved_by) if i is not None}
    return {i: services.store.person_name(i) or str(i) for i in ids}


# -- buttons --------------------------------------------------------------------
#
# One handler for every button: the one codec (`bot.callbacks`) reads the press, the
# one check (`TicketService.authorize`: the ticket must belong to this chat and the
# person must hold the action's right) loads the ticket, then the action's function
# runs. Callback data can be forged, so nothing is shown or changed before that check.

ButtonAction = Callable[[Update, "Services", Actor, Callback, Any], Awaitable["str | None"]]


async def _on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None:
        return
    services, actor = _services(context), _actor(update, context)
    callback = parse_callback(query.data or "")
    action = _BUTTONS.get(callback.action) if callback else None
    if actor is None or callback is None or action is None:
        log.warning("ignored forged or unknown button %r from user %s", query.data, query.from_user.id)
        await query.answer(ui.refusal("unknown"))
        return
    try:
        target: Ticket | Group = (services.groups.authorize(actor, callback)
                                  if callback.on_group or callback.on_group_answer
                                  else services.tickets.authorize(actor, callback))
        toast = await action(update, services, actor, callback, target)
    except Refused as err:
        log.info("refused button %s from user %s: %s", query.data, actor.person.user_id, err)
        try:
            await query.answer(str(err)[:200], show_alert=True)
        except BadRequest:  # already answered ("Mengirim…"): say it in the chat instead
            if query.message is not None:
                await context.bot.send_message(query.message.chat.id, str(err))
        return
    if toast is not None:
        await query.answer(toast[:200])
    if callback.action == "fixok":  # after the answer: Instagram may take seconds, Telegram waits for none
        await follow_spam_correction(services.store, services.settings.routing, callback.target,
                                     services.instagram, now=services.clock())
        deliver_alerts(services.settings, services.store, now=services.clock())
    services_wake(context)


def services_wake(context: ContextTypes.DEFAULT_TYPE) -> None:
    deliverer = context.application.bot_data.get("deliverer")
    if deliverer is not None:
        deliverer.wake.set()
    _services(context).replier.wake.set()


# -- group buttons (a group of similar tickets in a surge) --------------------------------


async def _group_view(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    text, buttons = services.groups.view(group)
    await _send_or_show(update, ui.Rendered(text, buttons))
    return f"Kelompok #{group.id}"


async def _group_ack(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    toast = services.groups.acknowledge_all(actor, group)
    await _show_group(update, services, group)
    return toast


async def _group_done(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    toast = services.groups.resolve_all(actor, group)
    await _show_group(update, services, group)
    return toast


async def _group_move(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    if cb.arg is None:
        row = services.store.surges.group(group.id) or {}
        text, buttons = surges.group_unit_picker(row, services.groups.unit_choices(group))
        await _show(update, ui.Rendered(text, buttons))
        return "Pilih unit tujuan kelompok ini."
    toast = services.groups.reassign_all(actor, group, cb.arg)
    await _show_group(update, services, group)
    return toast


async def _group_answer_how(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    return (f"Ketik /jawabkelompok {group.id} lalu teks jawabannya, atau /templat k{group.id} NOMOR "
            "untuk jawaban baku. Tim media menyetujuinya sekali untuk seluruh kelompok.")


async def _group_answer_send(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    toast = services.groups.approve(actor, cb.target)
    text, buttons = services.groups.answer_view(cb.target, services.settings.routing.surges.replies_per_minute)
    await _show(update, ui.Rendered(text, buttons))
    return toast


async def _group_answer_retry(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    return services.groups.retry_failed(actor, cb.target)


async def _group_answer_more(update: Update, services: Services, actor: Actor, cb: Callback, group: Group) -> str:
    toast = services.groups.send_to_late_arrivals(actor, cb.target)
    await _show(update, ui.Rendered(f"✅ {html.escape(toast)}"))
    return toast


async def _show_group(update: Update, services: Services, group: Group) -> None:
    """Redraw the pressed message as the group's current view (a failed redraw undoes nothing)."""
    text, buttons = services.groups.view(group)
    try:
        await _show(update, ui.Rendered(text, buttons))
    except TelegramError:
        log.warning("could not redraw group %s", group.id, exc_info=True)


async def _send_or_show(update: Update, rendered: ui.Rendered) -> None:
    """A group opened from a surge card comes as a message of its own: the card stays."""
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        await query.message.reply_html(rendered.text, reply_markup=keyboard(rendered.buttons),
                                       disable_web_page_preview=True)


async def _acknowledge(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    services.tickets.acknowledge(actor, ticket.id)
    return await _redrawn(update, services, cb)


async def _move(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    if cb.arg is None:
        await _show(update, ui.unit_picker(ticket, _units(services, ticket)))
        return "Pilih unit tujuan."
    services.tickets.reassign(actor, ticket.id, cb.arg)
    await _redrawn(update, services, cb)
    return ui.action_toast("move", ticket_id=ticket.id, unit_name=cb.arg.upper())


async def _resolve(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    services.tickets.resolve(actor, ticket.id)
    return await _redrawn(update, services, cb)


async def _correction_picker(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    labels, unit = cb.selection() if cb.action != "fix" else (None, None)
    await _show(update, ui.correction_picker(ticket, _units(services, ticket), labels, unit))
    return "Pilih label dan unit yang benar, lalu Simpan."


async def _correct(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    labels, unit = cb.selection()
    services.tickets.correct(actor, ticket.id, labels, unit)
    return await _redrawn(update, services, cb)


async def _reveal(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    ticket = services.tickets.reveal(actor, ticket.id)
    await _show(update, _full(services, ticket, masked=False))
    return ui.action_toast("reveal", ticket_id=ticket.id)


async def _back_to_ticket(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    """Batal, and Sembunyikan data pribadi: the message shows the ticket again, masked."""
    return await _redrawn(update, services, cb)


async def _open(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    """Buka #id under a list: the ticket comes as a message of its own; the list stays."""
    services.tickets.open_single(actor, ticket.id)
    return ui.action_toast("open", ticket_id=ticket.id)


async def _how_to_answer(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    return ui.action_toast("answer", ticket_id=ticket.id)


async def _send_draft(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Mengirim ke Instagram…")
    view = await services.answers.send(actor, cb.target)
    await query.edit_message_text(view.text, parse_mode="HTML", reply_markup=keyboard(view.buttons))
    return None


async def _edit_draft(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> None:
    assert update.callback_query is not None
    await update.callback_query.answer("Balas (reply) pesan draf ini dengan teks jawaban yang baru.", show_alert=True)
    return None


async def _hide_comment(update: Update, services: Services, actor: Actor, cb: Callback, ticket: Ticket) -> str:
    """Sembunyikan / Tampilkan a comment on Instagram (spam notices in the media team's group)."""
    hidden = cb.action == "spam_hide"
    toast = await services.answers.set_hidden(actor, ticket.id, hidden)
    await _show(update, spam_hidden_view(ticket, hidden))
    return toast


_BUTTONS: dict[str, ButtonAction] = {
    "ack": _acknowledge, "move": _move, "done": _resolve,
    "fix": _correction_picker, "fixl": _correction_picker, "fixu": _correction_picker, "fixok": _correct,
    "reveal": _reveal, "hide": _back_to_ticket, "cancel": _back_to_ticket, "open": _open, "answer": _how_to_answer,
    "send": _send_draft, "edit": _edit_draft, "spam_hide": _hide_comment, "spam_show": _hide_comment,
    "g_view": _group_view, "g_ack": _group_ack, "g_move": _group_move, "g_done": _group_done,
    "g_answer": _group_answer_how, "ga_send": _group_answer_send, "ga_retry": _group_answer_retry,
    "ga_more": _group_answer_more,
}


async def _redrawn(update: Update, services: Services, cb: Callback) -> str:
    """After a change was applied: redraw the pressed message and confirm. A redraw that fails
    does not undo the change (the outbox edits every message showing the ticket anyway), so the
    person is told what happened, not that something went wrong."""
    try:
        await _redraw(update, services, cb.target)
    except TelegramError:
        log.warning("could not redraw the message after %s on ticket %s", cb.action, cb.target, exc_info=True)
    return ui.action_toast(cb.action, ticket_id=cb.target)


def _units(services: Services, ticket: Ticket) -> list[tuple[str, str]]:
    return [(k, u.name) for k, u in services.settings.routing.accounts[ticket.account].units.items()]


def _full(services: Services, ticket: Ticket, *, masked: bool) -> ui.Rendered:
    rendered = services.renderer.ticket(ticket.id, "ticket", masked=masked)
    assert rendered is not None
    return rendered


async def _redraw(update: Update, services: Services, ticket_id: int) -> None:
    """Put the pressed message back to the ticket's current state, in the form it had."""
    query = update.callback_query
    message = query.message if query else None
    if message is None:
        return
    kind = "mirror" if message.chat.id == services.store.chat_alias(services.settings.routing.media_team.chat_id) else "ticket"
    rendered = services.renderer.ticket(ticket_id, kind)
    if rendered is not None and getattr(message, "text", None) is not None:
        await _show(update, rendered)


async def _show(update: Update, rendered: ui.Rendered) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.edit_message_text(rendered.text, parse_mode="HTML", reply_markup=keyboard(rendered.buttons),
                                      disable_web_page_preview=True)
    except BadRequest as err:
        if "not modified" not in str(err).lower():
            raise


# -- replies and errors -------------------------------------------------------------


async def _on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply to a ticket message is a drafted answer (or, starting with "catatan:", a note);
    a reply to a draft in the media team's group is its revised text."""
    message = update.effective_message
    services, actor = _services(context), _actor(update, context)
    if message is None or actor is None or message.reply_to_message is None:
        return
    replied_to, text = message.reply_to_message.message_id, (message.text or "").strip()
    try:
        draft_id = services.store.draft_for_message(message.chat.id, replied_to)
        if draft_id is not None:
            view = services.answers.revise(actor, draft_id, text)
            await message.reply_html(view.text, reply_markup=keyboard(view.buttons))
            return
        ticket_id = services.store.ticket_for_message(message.chat.id, replied_to)
        if ticket_id is None:
            return
        if text.lower().startswith("catatan:"):
            answer = services.tickets.add_note(actor, ticket_id, text.split(":", 1)[1])
        else:
            services.answers.draft(actor, ticket_id, text)
            answer = f"Draf jawaban tiket #{ticket_id} diteruskan ke tim media untuk disetujui."
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    await message.reply_text(answer)
    services_wake(context)


def _group_id(arg: str) -> int | None:
    arg = arg.lstrip("#").lower().removeprefix("k")
    return int(arg) if arg.isdigit() else None


async def _cmd_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/kelompok ID: a group of similar tickets in a surge, with its buttons."""
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    group_id = _group_id(context.args[0]) if context.args else None
    if group_id is None:
        await _refuse_command(update, "Tulis nomor kelompoknya, misalnya: /kelompok 12")
        return
    try:
        _require_known(actor)
        group = services.groups.load(actor, group_id, "g_view")
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    text, buttons = services.groups.view(group)
    await _reply(update, ui.Rendered(text, buttons))


async def _cmd_group_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/jawabkelompok ID TEKS: one answer for the whole group, to the media team for approval."""
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    args = context.args or []
    group_id = _group_id(args[0]) if args else None
    text = (update.effective_message.text or "").split(maxsplit=2)[2:] if update.effective_message else []
    if group_id is None or not text:
        await _refuse_command(update, "Tulis nomor kelompok dan jawabannya, misalnya: /jawabkelompok 12 Terima kasih…")
        return
    try:
        group = services.groups.load(actor, group_id, "g_answer")
        services.groups.draft(actor, group, text[0], services.settings.routing.surges.replies_per_minute)
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    await _reply(update, ui.Rendered(f"Draf jawaban kelompok #{group_id} diteruskan ke tim media untuk disetujui."))
    services_wake(context)


async def _cmd_take_out(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/keluarkan ID: a ticket leaves its group and is handled on its own."""
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    if not context.args or not context.args[0].lstrip("#").isdigit():
        await _refuse_command(update, "Tulis nomor tiketnya, misalnya: /keluarkan 123")
        return
    try:
        _require_known(actor)
        answer = services.groups.take_out(actor, int(context.args[0].lstrip("#")))
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    await _reply(update, ui.Rendered(html.escape(answer)))
    services_wake(context)


async def _cmd_templates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/templat: this unit's standard answers; /templat ID drafts one for ticket ID."""
    services, actor = _services(context), _actor(update, context)
    if actor is None:
        return
    routing = services.settings.routing
    units = sorted(actor.scope.units) if not actor.scope.sees_everything else [
        (a, u) for a, acc in routing.accounts.items() for u in acc.units]
    templates = [(a, u, name, text) for a, u in units for name, text in routing.accounts[a].units[u].templates.items()]
    args = context.args or []
    if len(args) >= 2 and args[0].lower().startswith("k") and _group_id(args[0]) and args[1].isdigit():
        await _group_template(update, context, services, actor, _group_id(args[0]) or 0, int(args[1]) - 1)
        return
    if len(args) >= 2 and args[0].lstrip("#").isdigit() and args[1].isdigit():
        ticket_id, index = int(args[0].lstrip("#")), int(args[1]) - 1
        try:
            ticket = services.tickets.load(actor, ticket_id)
            own = [t for t in templates if (t[0], t[1]) == (ticket.account, ticket.unit)]
            if not 0 <= index < len(own):
                raise Refused("Nomor templat tidak ada. Ketik /templat untuk melihat daftarnya.")
            services.answers.draft(actor, ticket_id, own[index][3])
        except Refused as err:
            await _refuse_command(update, str(err))
            return
        await _reply(update, ui.Rendered(f"Draf jawaban baku untuk tiket #{ticket_id} diteruskan ke tim media."))
        services_wake(context)
        return
    if not templates:
        await _reply(update, ui.Rendered("Belum ada jawaban baku untuk unit ini. Tim media dapat menambahkannya "
                                         "di routing.yaml (bagian <code>templates</code> unit)."))
        return
    lines = ["<b>Jawaban baku</b> — pakai dengan <code>/templat ID NOMOR</code>, misalnya <code>/templat 123 1</code>:"]
    current = None
    for a, u, name, text in templates:
        if (a, u) != current:
            current, number = (a, u), 0
            lines.append(f"\n<b>{html.escape(routing.accounts[a].units[u].name)}</b>")
        number += 1
        lines.append(f"{number}. <b>{html.escape(name)}</b>: {html.escape(text[:300])}")
    await _reply(update, ui.Rendered("\n".join(lines)[:4000]))


async def _group_template(update: Update, context: ContextTypes.DEFAULT_TYPE, services: Services, actor: Actor,
                          group_id: int, index: int) -> None:
    """/templat kID NOMOR: a unit's standard answer as the group's answer."""
    try:
        group = services.groups.load(actor, group_id, "g_answer")
        own = list(services.settings.routing.accounts[group.account].units[group.unit or ""].templates.values()) \
            if group.unit in services.settings.routing.accounts[group.account].units else []
        if not 0 <= index < len(own):
            raise Refused("Nomor templat tidak ada. Ketik /templat untuk melihat daftarnya.")
        services.groups.draft(actor, group, own[index], services.settings.routing.surges.replies_per_minute)
    except Refused as err:
        await _refuse_command(update, str(err))
        return
    await _reply(update, ui.Rendered(f"Draf jawaban baku untuk kelompok #{group_id} diteruskan ke tim media."))
    services_wake(context)


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything unexpected is logged in full once; the person gets a short notice."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.callback_query:
        try:
            await update.callback_query.answer("Maaf, terjadi gangguan. Silakan coba lagi sebentar lagi.")
        except Exception:  # the original error is already logged; a second one adds nothing
            log.debug("could not answer the callback after an error", exc_info=True)
    elif isinstance(update, Update) and update.effective_message:
        await update.effective_message.reply_text("Maaf, terjadi gangguan. Tim media sudah diberi tahu.")
    services = context.application.bot_data.get("services")
    if services is not None:
        services.store.add_alert("bot_error", f"Gangguan pada bot: {repr(context.error)[:300]}",  # plain text
                                 now=services.clock())
