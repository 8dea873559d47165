"""Rendering tickets, pickers, lists and notices as Telegram messages (Bahasa Indonesia).

Pure: tickets in, text and buttons out. Nothing here sends anything or imports
python-telegram-bot; every function returns plain data that the sender turns
into a Bot API call:

    r = ticket_message(ticket, account_name=..., unit_name=..., tz="Asia/Jakarta")
    await bot.send_message(chat_id, r.text, parse_mode=PARSE_MODE,
                           reply_markup=InlineKeyboardMarkup.de_json(r.reply_markup(), bot))

`Rendered.reply_markup()` is the Bot API's own JSON shape (or None), so it can
also be stored as an outbox payload as is. Texts are HTML (parse_mode "HTML"):
every piece of user or config text is escaped here, and every text stays
within Telegram's 4096-character limit (counted in UTF-16 units, as Telegram
does). `refusal()` and `action_toast()` return plain text (answerCallbackQuery
takes no HTML); escape them with html.escape if you send them as HTML.

Buttons and their callback data come from `bot.callbacks`, the one codec for
every button the bot draws.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence
from zoneinfo import ZoneInfo

from bot.callbacks import LABEL_CODES, Button, button, to_payload
from bot.indonesian import Tz, format_duration_id, format_wib, unit_label
from bot.pii import has_pii, mask_pii
from bot.triage import ACKNOWLEDGED, OPEN, RESOLVED, SPAM, Ticket

PARSE_MODE = "HTML"
MAX_TEXT = 4096
MAX_TOAST = 200
MAX_LIST_ITEMS = 20
MAX_NAME = 40  # characters of a citizen's username shown
INBOX_URL = "https://www.instagram.com/direct/inbox/"

LABEL_NAMES: Mapping[str, str] = {
    "complaint": "Keluhan", "question": "Pertanyaan", "negative": "Negatif", "spam": "Spam",
}
STATUS_BADGES: Mapping[str, str] = {
    OPEN: "🆕 Baru", ACKNOWLEDGED: "🟡 Ditangani", RESOLVED: "✅ Selesai", SPAM: "🚫 Spam",
}
CHANNEL_NAMES: Mapping[str, str] = {"comment": "Komentar", "dm": "DM"}
EVENT_NAMES: Mapping[str, str] = {
    "created": "dibuat", "acknowledged": "diterima", "moved": "dialihkan", "resolved": "diselesaikan",
    "corrected": "dikoreksi", "reminder": "pengingat", "nudge": "pengingat", "escalated": "eskalasi",
    "revealed": "data pribadi dibuka",
    # the button names, in case the server logs actions under them
    "ack": "diterima", "move": "dialihkan", "done": "diselesaikan", "fix": "dikoreksi",
    "reveal": "data pribadi dibuka", "escalation": "eskalasi", "reminded": "pengingat",
}
COMMANDS: Mapping[str, str] = {
    "antrian": "Tiket yang belum selesai, batas waktu terdekat di atas",
    "tiket": "Rincian dan riwayat satu tiket, misalnya /tiket 123",
    "cari": "Cari tiket menurut isi pesannya, misalnya /cari bansos",
    "spam": "Daftar pesan yang ditandai spam",
    "templat": "Jawaban baku unit ini, misalnya /templat 123 untuk tiket #123",
    "kelompok": "Tiket satu kelompok keluhan serupa saat lonjakan, misalnya /kelompok 12",
    "jawabkelompok": "Satu jawaban untuk seluruh kelompok, misalnya /jawabkelompok 12 Terima kasih…",
    "keluarkan": "Keluarkan satu tiket dari kelompoknya agar ditangani tersendiri, misalnya /keluarkan 123",
    "bantuan": "Panduan singkat perintah dan tombol",
}

COMMAND_USAGE: Mapping[str, str] = {"tiket": "/tiket ID", "cari": "/cari TEKS", "templat": "/templat [ID]",
                                     "kelompok": "/kelompok ID", "jawabkelompok": "/jawabkelompok ID TEKS",
                                     "keluarkan": "/keluarkan ID"}



# -- data types -------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """An HTML text and its inline keyboard (rows of buttons; empty for none)."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)

    def reply_markup(self) -> dict[str, Any] | None:
        """The Bot API's InlineKeyboardMarkup as JSON, or None without buttons."""
        if not self.buttons:
            return None
        rows = [[{"text": b.text, "callback_data": b.callback_data} for b in row] for row in self.buttons]
        return {"inline_keyboard": rows}

    def payload(self) -> dict[str, Any]:
        """The text and buttons as an outbox row's JSON payload (`delivery` sends it as is)."""
        return {"text": self.text, "buttons": to_payload(self.buttons)}


# -- dates and durations ----------------------------------------------------


# -- text helpers -------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _u16(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _link(url: str, label: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{_esc(label)}</a>'


def _clip(raw: str, budget: int) -> tuple[str, bool]:
    """Escape raw so that it fits budget; cut at a word boundary with '…' if needed."""
    escaped = _esc(raw)
    if _u16(escaped) <= budget:
        return escaped, False
    used, cut = 0, 0
    for i, ch in enumerate(raw):
        used += _u16(_esc(ch))
        if used > budget - 1:
            break
        cut = i + 1
    head = raw[:cut]
    space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    if space > cut * 0.6:
        head = head[:space]
    return _esc(head.rstrip()) + "…", True


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _window(raw: str, width: int, around: int | None = None) -> str:
    """About width characters of raw on one line, around a position, cut at words."""
    text = _one_line(raw)
    if len(text) <= width:
        return text
    start = 0 if around is None else max(0, min(around - width // 3, len(text) - width))
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = text[start:start + width]
    if start + width < len(text):
        space = piece.rfind(" ")
        piece = (piece[:space] if space > width * 0.6 else piece).rstrip() + "…"
    return ("…" if start else "") + piece


def _excerpt(ticket: Ticket, width: int, *, masked: bool = True) -> str:
    """An escaped one-line excerpt of the ticket's text (masked by default)."""
    text = mask_pii(ticket.text) if masked else ticket.text
    return _esc(_window(text, width)) if text.strip() else "<i>(tanpa teks)</i>"


def _fit_list(
    header: str, items: Sequence[str], total: int, more: Callable[[int], str], footer: str = ""
) -> tuple[str, int]:
    """header + as many items as fit in one message + a 'more' line counting the
    rest of total (items may already be a cut of a longer list)."""
    shown: list[str] = []
    for item in items:
        hidden = total - len(shown) - 1
        candidate = "\n".join([header, *shown, item, more(hidden) if hidden else "", footer])
        if _u16(candidate) > MAX_TEXT:
            break
        shown.append(item)
    hidden = total - len(shown)
    text = "\n".join(part for part in [header, *shown, more(hidden) if hidden else "", footer] if part)
    return text, len(shown)


def _open_buttons(ids: Iterable[int], per_row: int = 4) -> list[list[Button]]:
    buttons = [button(f"Buka #{i}", i, "open") for i in ids]
    return [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]


def _person(user_id: int | None, people: Mapping[int, str] | None) -> str:
    if user_id is None:
        return "petugas"
    return (people or {}).get(user_id) or f"petugas (ID {user_id})"


def _mention(user_id: int | None, name: str) -> str:
    return f'<a href="tg://user?id={user_id}">{_esc(name)}</a>' if user_id else _esc(name)


# -- tickets --------------------------------------------------------------------


def ticket_link(ticket: Ticket) -> tuple[str, str] | None:
    """(url, label) of where to answer: the comment, or the DM inbox."""
    if ticket.channel == "dm":
        return INBOX_URL, "Buka kotak masuk DM Instagram"
    if ticket.permalink and ticket.permalink.startswith("https://"):
        return ticket.permalink, "Buka komentar di Instagram"
    return None


def is_overdue(ticket: Ticket, now: datetime | None) -> bool:
    return bool(now and ticket.deadline and ticket.status in (OPEN, ACKNOWLEDGED) and ticket.deadline < now)


def labels_text(ticket: Ticket, *, scores: bool = True) -> str:
    """'Keluhan 92% · Pertanyaan 81%' (or without percentages)."""
    if not ticket.labels:
        return "tanpa label"
    parts = []
    for label in ticket.labels:
        name = LABEL_NAMES.get(label, label)
        score = ticket.scores.get(label) if scores else None
        parts.append(f"{name} {round(min(max(float(score), 0.0), 1.0) * 100)}%" if score is not None else name)
    return _esc(" · ".join(parts) if scores else ", ".join(parts))


def _badge(ticket: Ticket, now: datetime | None) -> str:
    badge = STATUS_BADGES.get(ticket.status, _esc(ticket.status))
    return badge + (" · ⏰ <b>LEWAT BATAS</b>" if is_overdue(ticket, now) else "")


def _author(ticket: Ticket) -> str:
    # Instagram usernames have at most 30 characters; a longer one (a forged webhook, a
    # broken API) is cut, so that a ticket message always fits Telegram's limit.
    return f"@{_clip(ticket.author_username, MAX_NAME)[0]}" if ticket.author_username else "(nama pengguna tidak diketahui)"


def _state_lines(ticket: Ticket, tz: Tz, people: Mapping[int, str] | None) -> list[str]:
    lines = []
    if ticket.acknowledged_at:
        who = _esc(_person(ticket.acknowledged_by, people))
        lines.append(f"🙋 Diterima oleh {who}, {format_wib(ticket.acknowledged_at, tz)}")
    if ticket.status == RESOLVED and ticket.resolved_at:
        who = _esc(_person(ticket.resolved_by, people))
        note = f" — catatan: {_clip(mask_pii(ticket.resolution_note), 500)[0]}" if ticket.resolution_note else ""
        lines.append(f"✅ Selesai oleh {who}, {format_wib(ticket.resolved_at, tz)}{note}")
    return lines


def ticket_buttons(
    ticket: Ticket, *, pii: bool = False, masked: bool = True, show_reveal: bool = True
) -> list[list[Button]]:
    """The buttons for a ticket in its status; reveal/hide only when the text has personal data."""
    t = ticket.id
    if ticket.status == OPEN:
        rows = [[button("Terima", t, "ack"), button("Alihkan", t, "move")],
                [button("Jawab", t, "answer"), button("Selesai", t, "done")],
                [button("Koreksi", t, "fix")]]
    elif ticket.status == ACKNOWLEDGED:
        rows = [[button("Jawab", t, "answer"), button("Alihkan", t, "move")],
                [button("Selesai", t, "done"), button("Koreksi", t, "fix")]]
    else:
        return [[button("Koreksi", t, "fix")]]
    if pii and show_reveal:
        rows.append([button("Lihat data pribadi", t, "reveal") if masked
                     else button("Sembunyikan data pribadi", t, "hide")])
    return rows


def ticket_message(
    ticket: Ticket,
    *,
    account_name: str,
    unit_name: str | None,
    tz: Tz,
    people: Mapping[int, str] | None = None,
    masked: bool = True,
    show_reveal: bool = True,
    now: datetime | None = None,
    text_budget: int = MAX_TEXT,
) -> Rendered:
    """The full ticket, as posted in the unit's group. people maps Telegram user
    ids to names; now (optional) marks an overdue ticket LEWAT BATAS."""
    head, tail = _ticket_head(ticket, account_name, tz), _ticket_tail(ticket, unit_name, tz, people)
    pii = has_pii(ticket.text)
    if masked and pii:
        tail.insert(0, "🔒 <i>Data pribadi disamarkan.</i>")
    head[0] = f"<b>Tiket #{ticket.id}</b> · {_badge(ticket, now)}"
    body = _body(ticket, masked, min(text_budget, MAX_TEXT) - _u16("\n".join(head + tail)) - 2)
    text = "\n".join([*head, body, *tail])
    return Rendered(text, ticket_buttons(ticket, pii=pii, masked=masked, show_reveal=show_reveal))


def _ticket_head(ticket: Ticket, account_name: str, tz: Tz) -> list[str]:
    channel = CHANNEL_NAMES.get(ticket.channel, _esc(ticket.channel))
    where = f"{_esc(account_name)} · {channel} · {_author(ticket)}"
    return ["", where, f"Masuk: {format_wib(ticket.received_at, tz)}"]


def _ticket_tail(ticket: Ticket, unit_name: str | None, tz: Tz, people: Mapping[int, str] | None) -> list[str]:
    lines = [f"Label: {labels_text(ticket)}"]
    if unit_name:
        lines.append(f"Unit: {_esc(unit_name)}")
    if ticket.deadline and ticket.status in (OPEN, ACKNOWLEDGED):
        lines.append(f"⏰ Batas: {format_wib(ticket.deadline, tz)}")
    link = ticket_link(ticket)
    if link:
        lines.append("🔗 " + _link(*link))
    return lines + _state_lines(ticket, tz, people)


def _body(ticket: Ticket, masked: bool, budget: int) -> str:
    """The message text in a quote, cut to budget with a link to read the rest."""
    raw = mask_pii(ticket.text) if masked else ticket.text
    if not raw.strip():
        return "<blockquote><i>(tanpa teks, mungkin foto, video atau stiker)</i></blockquote>"
    tag = "<blockquote expandable>" if len(raw) > 600 else "<blockquote>"
    link = ticket_link(ticket)
    more = " " + _link(link[0], "baca selengkapnya") if link else ""
    room = budget - _u16(tag) - len("</blockquote>")
    text, cut = _clip(raw, room)
    if cut:
        text = _clip(raw, room - _u16(more))[0] + more
    return f"{tag}{text}</blockquote>"


def mirror_message(
    ticket: Ticket,
    *,
    account_name: str,
    unit_name: str | None,
    tz: Tz,
    people: Mapping[int, str] | None = None,
    now: datetime | None = None,
    show_reveal: bool = True,
) -> Rendered:
    """A compact copy for the media team's group, with the same buttons."""
    first = f"{_badge(ticket, now)} <b>#{ticket.id}</b> {_esc(account_name)} › {_esc(unit_name or '—')}"
    first += f" · {labels_text(ticket, scores=False)}"
    if ticket.deadline and ticket.status in (OPEN, ACKNOWLEDGED):
        first += f" · batas: {format_wib(ticket.deadline, tz)}"
    if ticket.acknowledged_at:
        first += f" · diterima {_esc(_person(ticket.acknowledged_by, people))}"
    link = ticket_link(ticket)
    second = f"<i>{_excerpt(ticket, 120)}</i>" + (" " + _link(link[0], "↗") if link else "")
    buttons = ticket_buttons(ticket, pii=has_pii(ticket.text), show_reveal=show_reveal)
    return Rendered(f"{first}\n{second}", buttons)


def ticket_detail(
    ticket: Ticket,
    events: Sequence[Mapping[str, Any]],
    tz: Tz,
    *,
    account_name: str,
    unit_name: str | None,
    people: Mapping[int, str] | None = None,
    unit_names: Mapping[str, str] | None = None,
    masked: bool = True,
    show_reveal: bool = True,
    now: datetime | None = None,
) -> Rendered:
    """/tiket ID: the ticket and its history (store.ticket_events rows), newest last;
    the oldest events are left out when the message would be too long."""
    base = ticket_message(ticket, account_name=account_name, unit_name=unit_name, tz=tz, people=people,
                          masked=masked, show_reveal=show_reveal, now=now, text_budget=2500)
    lines = [event_line(e, tz, people, unit_names) for e in events]
    shown: list[str] = []
    for line in reversed(lines):
        if _u16("\n".join([base.text, "", "<b>Riwayat</b>", line, *shown, "… 9999 catatan sebelumnya"])) > MAX_TEXT:
            break
        shown.insert(0, line)
    hidden = len(lines) - len(shown)
    history = ["", "<b>Riwayat</b>"] + ([f"… {hidden} catatan sebelumnya"] if hidden else []) + shown
    return Rendered("\n".join([base.text, *history]), base.buttons)


def event_line(
    event: Mapping[str, Any],
    tz: Tz,
    people: Mapping[int, str] | None = None,
    unit_names: Mapping[str, str] | None = None,
) -> str:
    """'• Senin 24 Nov 09.12 WIB — diterima oleh Budi'. Reads the detail keys
    unit, from_unit, labels and note (or resolution_note) when present."""
    at = event.get("at")
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    when = format_wib(moment, tz) if isinstance(moment, datetime) else "?"
    kind = str(event.get("kind") or "")
    line = f"• {when} — {_esc(EVENT_NAMES.get(kind, kind))}{_actor(event.get('actor'), people)}"
    return line + _event_detail(kind, event.get("detail") or {}, unit_names or {})


def _actor(actor: Any, people: Mapping[int, str] | None) -> str:
    text = str(actor or "").removeprefix("tg:")
    if not text or text == "system":
        return ""
    if text.lstrip("-").isdigit():
        return f" oleh {_esc(_person(int(text), people))}"
    return f" oleh {_esc(text)}"


def _event_detail(kind: str, detail: Mapping[str, Any], unit_names: Mapping[str, str]) -> str:
    def unit(key: Any) -> str:
        return _esc(unit_names.get(str(key), unit_label(str(key))))

    out = ""
    if kind in ("moved", "move") and detail.get("unit"):
        out += (f" dari {unit(detail['from_unit'])}" if detail.get("from_unit") else "") + f" ke {unit(detail['unit'])}"
    if kind in ("corrected", "fix") and "labels" in detail:
        names = ", ".join(LABEL_NAMES.get(str(x), str(x)) for x in detail["labels"] or ()) or "tanpa label"
        out += f": {_esc(names)}" + (f", unit {unit(detail['unit'])}" if detail.get("unit") else "")
    note = detail.get("note") or detail.get("resolution_note")
    if kind in ("resolved", "done") and note:
        out += f" — catatan: {_clip(mask_pii(str(note)), 300)[0]}"
    return out


# -- pickers ----------------------------------------------------------------------


def unit_picker(ticket: Ticket, units: Sequence[tuple[str, str]]) -> Rendered:
    """Alihkan: the account's other units, one per row, and Batal."""
    current = dict(units).get(ticket.unit or "", unit_label(ticket.unit))
    others = [(key, name) for key, name in units if key != ticket.unit]
    text = f"↪️ <b>Alihkan tiket #{ticket.id}</b>\nSaat ini di: {_esc(current)}\n<i>{_excerpt(ticket, 160)}</i>\n\n"
    text += "Pilih unit yang lebih tepat untuk menjawab:" if others else "Tidak ada unit lain untuk akun ini."
    rows = [[button(name, ticket.id, "move", key)] for key, name in others]
    rows.append([button("Batal", ticket.id, "cancel")])
    return Rendered(text, rows)


def correction_picker(
    ticket: Ticket,
    units: Sequence[tuple[str, str]],
    selected_labels: Sequence[str] | None = None,
    selected_unit: str | None = None,
) -> Rendered:
    """Koreksi: toggle labels, pick the unit, Simpan or Batal. None means "as the
    ticket has it"; with spam chosen no unit is offered (spam goes to no unit)."""
    chosen = set(ticket.labels if selected_labels is None else selected_labels)
    labels = tuple(label for label in LABEL_CODES if label in chosen)
    unit = None if "spam" in labels else (selected_unit if selected_unit is not None else ticket.unit)
    rows = _label_rows(ticket.id, labels, unit)
    if "spam" not in labels:
        rows += [[button(("✅ " if key == unit else "") + name, ticket.id, "fixu", key, labels)]
                 for key, name in units]
    rows.append([button("Simpan", ticket.id, "fixok", None, labels, unit),
                 button("Batal", ticket.id, "cancel")])
    return Rendered(_correction_text(ticket, labels, unit, units), rows)


def _label_rows(ticket_id: int, labels: Sequence[str], unit: str | None) -> list[list[Button]]:
    buttons = [button(("✅ " if label in labels else "⬜ ") + name, ticket_id, "fixl", label, labels, unit)
               for label, name in LABEL_NAMES.items()]
    return [buttons[:2], buttons[2:]]


def _correction_text(ticket: Ticket, labels: Sequence[str], unit: str | None, units: Sequence[tuple[str, str]]) -> str:
    names = ", ".join(LABEL_NAMES[x] for x in labels) or "tanpa label"
    where = "tidak diteruskan ke unit" if "spam" in labels else dict(units).get(unit or "", "belum dipilih")
    return (
        f"✏️ <b>Koreksi tiket #{ticket.id}</b>\n<i>{_excerpt(ticket, 160)}</i>\n\n"
        "Pilih label yang benar (boleh lebih dari satu) dan unit yang seharusnya menjawab, lalu tekan Simpan.\n"
        f"Label: {_esc(names)}\nUnit: {_esc(where)}"
    )


# -- lists --------------------------------------------------------------------------


def _sort_by_deadline(tickets: Iterable[Ticket]) -> list[Ticket]:
    far = datetime.max.replace(tzinfo=ZoneInfo("UTC"))
    return sorted(tickets, key=lambda t: (t.deadline or far, t.id))


def batch_message(tickets: Sequence[Ticket], unit_name: str, tz: Tz, *, now: datetime | None = None) -> Rendered:
    """'12 tiket baru untuk PFM': up to 20 tickets with an excerpt and deadline,
    one Buka button each; the rest is counted and left to /antrian."""
    items = [_list_item(t, tz, now, width=110) for t in tickets[:MAX_LIST_ITEMS]]
    header = f"📥 <b>{len(tickets)} tiket baru untuk {_esc(unit_name)}</b>"
    footer = "Tekan Buka untuk melihat tiket dan menindaklanjutinya."
    text, shown = _fit_list(header, items, len(tickets), _more, footer)
    return Rendered(text, _open_buttons(t.id for t in tickets[:shown]))


def _more(count: int) -> str:
    return f"… dan {count} tiket lainnya. Ketik /antrian untuk melihat semuanya."


def _list_item(ticket: Ticket, tz: Tz, now: datetime | None, *, width: int, extra: str = "") -> str:
    if is_overdue(ticket, now) and ticket.deadline:
        when = f"🔴 <b>LEWAT BATAS</b> ({format_wib(ticket.deadline, tz)})"
    elif ticket.deadline and ticket.status in (OPEN, ACKNOWLEDGED):
        when = f"batas: {format_wib(ticket.deadline, tz)}"
    else:
        when = f"masuk: {format_wib(ticket.received_at, tz)}"
    return f"<b>#{ticket.id}</b> · {when}{extra}\n   {_excerpt(ticket, width)}"


def queue_message(
    tickets: Sequence[Ticket],
    tz: Tz,
    title: str,
    *,
    now: datetime | None = None,
    people: Mapping[int, str] | None = None,
    show_unit: bool = False,
    groups: Mapping[int, str] | None = None,
) -> Rendered:
    """/antrian: oldest deadline first, overdue tickets marked LEWAT BATAS; the tickets of a
    group of similar tickets (`groups`: id -> title) are one item with their count."""
    if not tickets:
        return Rendered(f"<b>{_esc(title)}</b>\nTidak ada tiket yang menunggu. Terima kasih! 🙏")
    ordered = _sort_by_deadline(tickets)
    overdue = sum(is_overdue(t, now) for t in ordered)
    header = f"📋 <b>{_esc(title)}</b> · {len(ordered)} tiket" + (f", {overdue} lewat batas" if overdue else "")
    entries = collapse_groups(ordered)
    items = [_entry_item(e, tz, now, groups, extra=_queue_extra(e[0], people, show_unit))
             for e in entries[:MAX_LIST_ITEMS]]
    text, shown = _fit_list(header, items, len(entries), _more)
    return Rendered(text, _entry_buttons(entries[:shown]))


Entry = tuple[Ticket, int, int]  # (first ticket by deadline, its group id or 0, tickets it stands for)


def collapse_groups(ordered: Sequence[Ticket]) -> list[Entry]:
    """Tickets of one group of similar tickets (a surge) become one item with their count,
    at the place of the group's earliest deadline: a group is answered as one."""
    entries: list[list[Any]] = []
    at: dict[int, int] = {}
    for t in ordered:
        if t.group_id is None:
            entries.append([t, 0, 1])
        elif t.group_id in at:
            entries[at[t.group_id]][2] += 1
        else:
            at[t.group_id] = len(entries)
            entries.append([t, t.group_id, 1])
    return [(e[0], e[1], e[2]) for e in entries]


def _entry_item(entry: Entry, tz: Tz, now: datetime | None, groups: Mapping[int, str] | None,
                *, extra: str = "", width: int = 80) -> str:
    ticket, group_id, count = entry
    if not group_id:
        return _list_item(ticket, tz, now, width=width, extra=extra)
    first = _list_item(ticket, tz, now, width=width).split("\n", 1)[0].split(" · ", 1)[1]
    title = (groups or {}).get(group_id) or ""
    return (f"<b>Kelompok #{group_id}</b> · {count} tiket · {first}\n   {_esc(title)}"
            + (f" — mis. {_excerpt(ticket, 50)}" if title else _excerpt(ticket, width)))


def _entry_buttons(entries: Sequence[Entry], per_row: int = 4) -> list[list[Button]]:
    buttons = [button(f"Kelompok #{g}", g, "g_view") if g else button(f"Buka #{t.id}", t.id, "open")
               for t, g, _ in entries]
    return [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]


def _queue_extra(ticket: Ticket, people: Mapping[int, str] | None, show_unit: bool) -> str:
    unit = f" · {_esc(unit_label(ticket.unit))}" if show_unit else ""
    if ticket.status == ACKNOWLEDGED:
        return f"{unit} · ditangani {_esc(_person(ticket.acknowledged_by, people))}"
    return f"{unit} · belum diterima" if ticket.status == OPEN else unit


def search_results(tickets: Sequence[Ticket], query: str, tz: Tz) -> Rendered:
    """/cari TEKS: matching tickets, newest first, the query in bold in each excerpt."""
    shown_query = _clip(mask_pii(_one_line(query)), 100)[0]  # _clip escapes
    if not tickets:
        return Rendered(f"🔎 Tidak ada tiket yang memuat “{shown_query}”.")
    ordered = sorted(tickets, key=lambda t: (t.received_at, t.id), reverse=True)
    header = f"🔎 <b>Hasil pencarian “{shown_query}”</b>: {len(ordered)} tiket"
    items = [_search_item(t, query, tz) for t in ordered[:MAX_LIST_ITEMS]]
    more = "… dan {} tiket lainnya. Persempit kata kuncinya.".format
    text, shown = _fit_list(header, items, len(ordered), more)
    return Rendered(text, _open_buttons(t.id for t in ordered[:shown]))


def _search_item(ticket: Ticket, query: str, tz: Tz) -> str:
    text = _one_line(mask_pii(ticket.text))
    at = text.lower().find(query.strip().lower()) if query.strip() else -1
    excerpt = _highlight(_window(text, 120, at if at >= 0 else None), query.strip())
    status = STATUS_BADGES.get(ticket.status, _esc(ticket.status))
    return f"<b>#{ticket.id}</b> · {status} · {format_wib(ticket.received_at, tz)}\n   {excerpt}"


def _highlight(text: str, query: str) -> str:
    """Escape text, with every case-insensitive occurrence of query in bold."""
    if not query:
        return _esc(text)
    parts = re.split(f"({re.escape(query)})", text, flags=re.IGNORECASE)
    return "".join(f"<b>{_esc(p)}</b>" if i % 2 else _esc(p) for i, p in enumerate(parts))


def spam_list(tickets: Sequence[Ticket], tz: Tz) -> Rendered:
    """/spam: the latest spam, newest first; a wrong one is fixed with Buka, then Koreksi."""
    if not tickets:
        return Rendered("🚫 Belum ada pesan yang ditandai spam.")
    ordered = sorted(tickets, key=lambda t: (t.received_at, t.id), reverse=True)
    header = f"🚫 <b>Pesan yang ditandai spam</b> · {len(ordered)}"
    items = [_list_item(t, tz, None, width=90, extra=f" · {_author(t)}") for t in ordered[:MAX_LIST_ITEMS]]
    footer = "Bukan spam? Tekan Buka, lalu Koreksi."
    text, shown = _fit_list(header, items, len(ordered), lambda n: f"… dan {n} lainnya.", footer)
    return Rendered(text, _open_buttons(t.id for t in ordered[:shown]))


# -- help, refusals, toasts ------------------------------------------------------------


_BUTTON_HELP = (
    "<b>Tombol pada tiket</b>\n"
    "Terima — tandai bahwa Anda menangani tiket ini\n"
    "Alihkan — pindahkan ke unit yang lebih tepat\n"
    "Jawab — balas (reply) pesan tiket dengan teks jawaban; tim media menyetujui lalu bot mengirimnya ke Instagram\n"
    "Selesai — tandai tiket sudah dijawab di Instagram\n"
    "Koreksi — perbaiki label atau unit bila bot keliru; masukan ini membantu bot belajar\n"
    "Lihat data pribadi — tampilkan NIK, nomor HP dan data lain yang disamarkan; gunakan seperlunya"
)
_ROLE_INTRO: Mapping[str, str] = {
    "officer": "Bot ini meneruskan komentar dan DM Instagram yang perlu dijawab unit Anda.",
    "media": "Tim media menerima salinan setiap tiket dan dapat menindaklanjuti tiket semua unit, "
             "termasuk peringatan sistem dan eskalasi tiket yang lewat batas.",
    "supervisor": "Anda menerima eskalasi tiket yang lewat batas waktu dan dapat menindaklanjuti tiket semua unit.",
}


def help_text(role: str, *, working_days: int = 3) -> Rendered:
    """/bantuan for an officer, the media team ("media" or "media_team") or a supervisor."""
    key = "media" if role == "media_team" else role
    commands = "\n".join(f"{COMMAND_USAGE.get(name, '/' + name)} — {_esc(desc)}" for name, desc in COMMANDS.items())
    text = (
        f"<b>Panduan bot triase Instagram</b>\n{_ROLE_INTRO.get(key, _ROLE_INTRO['officer'])}\n\n"
        f"<b>Perintah</b>\n{commands}\n\n{_BUTTON_HELP}\n\n"
        f"Setiap tiket perlu dijawab paling lambat {working_days} hari kerja. "
        "Bot akan mengingatkan sebelum batas waktu."
    )
    return Rendered(text)


def bot_commands() -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands."""
    return list(COMMANDS.items())


RefusalReason = Literal[
    "not_unit_officer", "not_media_team", "not_supervisor", "not_registered", "not_found",
    "already_resolved", "already_acknowledged", "same_unit", "need_unit", "private_chat", "too_fast", "unknown",
]


def refusal(
    reason: str,
    *,
    unit_name: str | None = None,
    ticket_id: int | None = None,
    name: str | None = None,
) -> str:
    """A polite refusal as plain text (≤ 200 characters, fits answerCallbackQuery)."""
    ticket = f"#{ticket_id}" if ticket_id is not None else "ini"
    texts = {
        "not_unit_officer": f"Maaf, tombol ini hanya untuk petugas unit {unit_name or 'terkait'}.",
        "not_media_team": "Maaf, perintah ini hanya untuk tim media.",
        "not_supervisor": "Maaf, perintah ini hanya untuk pimpinan.",
        "not_registered": "Maaf, Anda belum terdaftar sebagai petugas. Silakan hubungi tim media.",
        "not_found": f"Maaf, tiket {ticket} tidak ditemukan.",
        "already_resolved": f"Tiket {ticket} sudah selesai.",
        "already_acknowledged": f"Tiket {ticket} sudah diterima oleh {name or 'petugas lain'}.",
        "same_unit": f"Tiket {ticket} sudah berada di unit tersebut.",
        "need_unit": "Pilih unit yang harus menjawab terlebih dahulu, lalu tekan Simpan.",
        "private_chat": "Maaf, perintah ini hanya dapat digunakan di grup unit.",
        "too_fast": "Mohon tunggu sebentar, lalu coba lagi.",
    }
    return _cap(texts.get(reason, "Maaf, permintaan ini tidak dapat diproses. Silakan coba lagi."))


def action_toast(action: str, *, ticket_id: int, unit_name: str | None = None) -> str:
    """The short answer to a button press (plain text, ≤ 200 characters). "move"
    with unit_name confirms the move, without it answers the opening of the picker;
    "fix" answers the opening of the picker, "fixok" the saved correction."""
    t = f"#{ticket_id}"
    texts = {
        "ack": f"Tiket {t} Anda terima. Terima kasih!",
        "move": f"Tiket {t} dialihkan ke {unit_name}." if unit_name else "Silakan pilih unit tujuan.",
        "done": f"Tiket {t} ditandai selesai. Terima kasih!",
        "fixok": f"Koreksi tiket {t} disimpan. Terima kasih, masukan ini membantu bot belajar.",
        "fix": "Silakan pilih label dan unit yang benar, lalu tekan Simpan.",
        "reveal": "Data pribadi ditampilkan. Mohon jaga kerahasiaannya.",
        "hide": "Data pribadi disamarkan kembali.",
        "cancel": "Dibatalkan.",
        "open": f"Membuka tiket {t}…",
        "answer": f"Balas (reply) pesan tiket {t} dengan teks jawaban; draf akan diteruskan ke tim media.",
    }
    return _cap(texts.get(action, "Berhasil."))


def _cap(text: str, limit: int = MAX_TOAST) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- deadlines and alerts -------------------------------------------------------------


def reminder_message(
    ticket: Ticket,
    due_in_text: str,
    acknowledged_by_name: str | None,
    *,
    tz: Tz,
    unit_name: str | None = None,
    acknowledged_by_id: int | None = None,
) -> Rendered:
    """Before the deadline: names (and, given the id, mentions) the officer who took it."""
    lines = [f"⏰ <b>Pengingat tiket #{ticket.id}</b>"]
    if ticket.deadline:
        lines.append(f"Batas jawab {_esc(due_in_text)} lagi: {format_wib(ticket.deadline, tz)}.")
    if acknowledged_by_name:
        lines.append(f"{_mention(acknowledged_by_id, acknowledged_by_name)}, mohon tiket ini dijawab "
                     "sebelum batas waktu, lalu tekan Selesai. Terima kasih.")
    else:
        unit = f" {_esc(unit_name)}" if unit_name else ""
        lines.append(f"Tiket ini belum diterima. Mohon petugas unit{unit} segera menindaklanjutinya.")
    lines += [f"<i>{_excerpt(ticket, 200)}</i>", *_link_line(ticket)]
    return Rendered("\n".join(lines), ticket_buttons(ticket, pii=has_pii(ticket.text), show_reveal=False))


def _link_line(ticket: Ticket) -> list[str]:
    link = ticket_link(ticket)
    return ["🔗 " + _link(*link)] if link else []


def nudge_message(
    tickets: Sequence[Ticket],
    unit_name: str,
    tz: Tz,
    *,
    waited_text: str | None = None,
    now: datetime | None = None,
    groups: Mapping[int, str] | None = None,
) -> Rendered:
    """Tickets nobody has pressed Terima on; waited_text like '4 jam kerja'. A group of
    similar tickets is one item with its count."""
    since = f" lebih dari {_esc(waited_text)}" if waited_text else ""
    header = (f"🔔 <b>{len(tickets)} tiket untuk {_esc(unit_name)} belum diterima{since}</b>\n"
              "Mohon ditinjau dan tekan Terima pada tiket yang Anda tangani.")
    entries = collapse_groups(_sort_by_deadline(tickets))
    items = [_entry_item(e, tz, now, groups) for e in entries[:MAX_LIST_ITEMS]]
    text, shown = _fit_list(header, items, len(entries), _more)
    return Rendered(text, _entry_buttons(entries[:shown]))


def escalation_message(
    ticket: Ticket,
    *,
    account_name: str,
    unit_name: str | None,
    tz: Tz,
    now: datetime,
    acknowledged_by_name: str | None = None,
    with_buttons: bool = True,
) -> Rendered:
    """An overdue ticket, for the supervisor and the media team."""
    channel = CHANNEL_NAMES.get(ticket.channel, _esc(ticket.channel))
    lines = [f"⚠️ <b>Eskalasi: tiket #{ticket.id} lewat batas waktu</b>",
             f"{_esc(account_name)} · {channel} · {_author(ticket)}",
             f"Unit: {_esc(unit_name or unit_label(ticket.unit))}"]
    if ticket.deadline:
        late = format_duration_id(now - ticket.deadline)
        lines.append(f"Batas: {format_wib(ticket.deadline, tz)} (lewat {late})")
    if ticket.status == ACKNOWLEDGED or acknowledged_by_name:
        lines.append(f"Status: ditangani oleh {_esc(acknowledged_by_name or 'petugas')}, belum selesai")
    else:
        lines.append("Status: belum diterima siapa pun")
    lines += [f"<blockquote>{_excerpt(ticket, 300)}</blockquote>", *_link_line(ticket)]
    buttons = ticket_buttons(ticket, pii=has_pii(ticket.text), show_reveal=False) if with_buttons else []
    return Rendered("\n".join(lines), buttons)


def alert_message(text: str, *, title: str = "Peringatan sistem") -> Rendered:
    """A system alert for the media team (e.g. an expired Instagram token)."""
    head = f"⚠️ <b>{_esc(title)}</b>\n"
    return Rendered(head + _clip(text, MAX_TEXT - _u16(head))[0])
