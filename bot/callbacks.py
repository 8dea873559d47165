"""Inline buttons and their callback data: one type and one codec for every button.

Pure: no I/O, no python-telegram-bot. Every button the bot draws is a `Button`
whose callback_data comes from `Callback.data`; every press is read back with
`parse`, which returns None for anything the bot did not draw. The data is at
most 64 bytes and can be forged (Telegram's docs say so), so the application
checks who pressed, where, and on which ticket for every action
(`workflow.check_may`).

Wire format, kept stable so that buttons already shown in the groups keep working:

    t:<id>:ack                    Terima
    t:<id>:move                   Alihkan: show the unit picker
    t:<id>:move:<unit>            Alihkan to <unit>
    t:<id>:done                   Selesai
    t:<id>:fix                    Koreksi: show the correction picker as the ticket is
    t:<id>:fixl:<label>:<sel>     picker: toggle <label>; <sel> is the selection on screen
    t:<id>:fixu:<unit>:<codes>    picker: choose <unit>; <codes> are the labels on screen
    t:<id>:fixok:<sel>            picker: Simpan <sel>
    t:<id>:cancel                 Batal: back to the ticket
    t:<id>:reveal                 Lihat data pribadi
    t:<id>:hide                   Sembunyikan data pribadi
    t:<id>:open                   Buka #id (batch, queue, lists): show the ticket
    t:<id>:answer                 Jawab: how to draft an answer (reply to the ticket message)
    a:<draft>:send                Kirim (or Coba kirim lagi) a draft answer       -> action "send"
    a:<draft>:edit                Ubah a draft answer                             -> action "edit"
    a:<id>:hide                   Sembunyikan a comment on Instagram (spam)       -> action "spam_hide"
    a:<id>:unhide                 Tampilkan a hidden comment again                -> action "spam_show"
    g:<group>:view                a group of similar tickets in a surge           -> action "g_view"
    g:<group>:ack                 Terima semua: acknowledge the group's tickets   -> action "g_ack"
    g:<group>:move[:<unit>]       Alihkan the whole group (picker, then unit)     -> action "g_move"
    g:<group>:done                Selesai semua                                   -> action "g_done"
    g:<group>:answer              Jawab: how to draft one answer for the group    -> action "g_answer"
    ga:<answer>:send              Kirim a group answer under every comment        -> action "ga_send"
    ga:<answer>:retry             Coba lagi the replies that failed               -> action "ga_retry"
    ga:<answer>:more              the same answer for tickets that joined later   -> action "ga_more"

<codes> are label letters in this order: c=complaint, q=question, n=negative,
s=spam ("" for none); <sel> is "<codes>.<unit>" ("cq.pfm", "s.", ".humas").
The picker is stateless: each of its buttons carries the selection on screen,
so the server needs no pending state; `parse(data).selection()` gives the
selection after the press. With ids below 10^12, unit keys of up to 20
characters always fit; a longer key raises ValueError when drawn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

MAX_CALLBACK_BYTES = 64

LABEL_CODES: Mapping[str, str] = {"complaint": "c", "question": "q", "negative": "n", "spam": "s"}
_CODE_LABELS = {code: label for label, code in LABEL_CODES.items()}

# Actions on a draft answer: their id is the draft's, not the ticket's.
DRAFT_ACTIONS = frozenset({"send", "edit"})
# Actions on a group of tickets (id: the group's) and on a group answer (id: the answer's).
GROUP_ACTIONS = frozenset({"g_view", "g_ack", "g_move", "g_done", "g_answer"})
GROUP_ANSWER_ACTIONS = frozenset({"ga_send", "ga_retry", "ga_more"})
# action -> (prefix, word on the wire)
_WIRE: Mapping[str, tuple[str, str]] = {
    **{a: ("t", a) for a in ("ack", "move", "done", "fix", "fixl", "fixu", "fixok", "cancel", "reveal", "hide",
                             "open", "answer")},
    "send": ("a", "send"), "edit": ("a", "edit"), "spam_hide": ("a", "hide"), "spam_show": ("a", "unhide"),
    **{a: ("g", a[2:]) for a in GROUP_ACTIONS},
    **{a: ("ga", a[3:]) for a in GROUP_ANSWER_ACTIONS},
}
_ACTION = {wire: action for action, wire in _WIRE.items()}
_PLAIN = frozenset({"ack", "done", "fix", "cancel", "reveal", "hide", "open", "answer",
                    "send", "edit", "spam_hide", "spam_show", "g_view", "g_ack", "g_done", "g_answer",
                    *GROUP_ANSWER_ACTIONS})
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_CODES = re.compile(r"[cqns]*")
_SEL = re.compile(r"([cqns]*)\.((?:[a-z][a-z0-9_]*)?)")
_ID = re.compile(r"[1-9]\d{0,18}")


@dataclass(frozen=True)
class Callback:
    """One button's meaning: an action on a ticket (or, for `send`/`edit`, on a draft answer)."""

    target: int
    action: str
    arg: str | None = None
    labels: tuple[str, ...] = ()
    unit: str | None = None

    @property
    def on_draft(self) -> bool:
        return self.action in DRAFT_ACTIONS

    @property
    def on_group(self) -> bool:
        return self.action in GROUP_ACTIONS

    @property
    def on_group_answer(self) -> bool:
        return self.action in GROUP_ANSWER_ACTIONS

    @property
    def data(self) -> str:
        """The callback_data string (see the module docstring)."""
        prefix, word = _WIRE[self.action]
        args: list[str] = []
        if self.action in ("move", "g_move") and self.arg:
            args = [self.arg]
        elif self.action == "fixl":
            args = [self.arg or "", _selection(self.labels, self.unit)]
        elif self.action == "fixu":
            args = [self.arg or "", encode_labels(self.labels)]
        elif self.action == "fixok":
            args = [_selection(self.labels, self.unit)]
        return ":".join((prefix, str(self.target), word, *args))

    def selection(self) -> tuple[tuple[str, ...], str | None]:
        """The correction picker's labels and unit after this press."""
        if self.action == "fixl" and self.arg:
            return toggle_label(self.labels, self.arg), self.unit
        if self.action == "fixu":
            return self.labels, self.arg
        return self.labels, self.unit


@dataclass(frozen=True)
class Button:
    """One inline button. callback_data is checked against Telegram's 64-byte limit."""

    text: str
    callback_data: str

    def __post_init__(self) -> None:
        size = len(self.callback_data.encode("utf-8"))
        if not 1 <= size <= MAX_CALLBACK_BYTES:
            raise ValueError(f"callback_data is {size} bytes, Telegram allows 1-64: {self.callback_data!r}")


Buttons = Sequence[Sequence[Button]]


def button(text: str, target: int, action: str, arg: str | None = None,
           labels: Iterable[str] = (), unit: str | None = None) -> Button:
    return Button(text, Callback(target, action, arg, tuple(labels), unit).data)


def parse(data: str) -> Callback | None:
    """callback_data -> Callback, or None when it is not one of ours or is malformed."""
    parts = (data or "").split(":")
    if len(parts) < 3 or not _ID.fullmatch(parts[1]):
        return None
    action = _ACTION.get((parts[0], parts[2]))
    target, args = int(parts[1]), parts[3:]
    if action is None:
        return None
    if action in _PLAIN and not args:
        return Callback(target, action)
    if action in ("move", "g_move") and len(args) <= 1 and all(_KEY.fullmatch(a) for a in args):
        return Callback(target, action, args[0] if args else None)
    if action == "fixl" and len(args) == 2 and args[0] in LABEL_CODES:
        return _with_selection(Callback(target, action, args[0]), args[1])
    if action == "fixu" and len(args) == 2 and _KEY.fullmatch(args[0]) and _CODES.fullmatch(args[1]):
        return Callback(target, action, args[0], decode_labels(args[1]))
    if action == "fixok" and len(args) == 1:
        return _with_selection(Callback(target, action), args[0])
    return None


def to_payload(rows: Buttons) -> list[list[list[str]]]:
    """Buttons as JSON for an outbox row: [[[text, callback_data], ...], ...]."""
    return [[[b.text, b.callback_data] for b in row] for row in rows]


def from_payload(rows: Any) -> list[list[Button]]:
    """The inverse of `to_payload`."""
    return [[Button(text, data) for text, data in row] for row in rows or ()]


def _with_selection(cb: Callback, sel: str) -> Callback | None:
    m = _SEL.fullmatch(sel)
    if not m:
        return None
    return Callback(cb.target, cb.action, cb.arg, decode_labels(m.group(1)), m.group(2) or None)


def _selection(labels: Iterable[str], unit: str | None) -> str:
    return f"{encode_labels(labels)}.{unit or ''}"


def decode_labels(codes: str) -> tuple[str, ...]:
    return tuple(_CODE_LABELS[c] for c in "cqns" if c in codes)


def encode_labels(labels: Iterable[str]) -> str:
    chosen = set(labels)
    return "".join(LABEL_CODES[label] for label in LABEL_CODES if label in chosen)


def toggle_label(labels: Sequence[str], label: str) -> tuple[str, ...]:
    """Toggle one label; spam stands alone, so choosing it clears the others and back."""
    chosen = set(labels)
    if label in chosen:
        chosen.discard(label)
    elif label == "spam":
        chosen = {"spam"}
    else:
        chosen = (chosen - {"spam"}) | {label}
    return tuple(label for label in LABEL_CODES if label in chosen)
