"""A fake Telegram Bot API server for end-to-end tests.

A real aiohttp server on 127.0.0.1 (random free port) running in a background
thread with its own event loop.  Point python-telegram-bot at it by URL::

    with FakeTelegram(token="123:ABC") as fake:
        fake.add_chat(-1001, title="Media team")
        app = (
            Application.builder()
            .token(fake.token)
            .base_url(fake.base_url)
            .base_file_url(fake.base_file_url)
            .build()
        )

It speaks the wire protocol PTB uses (POST, form-urlencoded / multipart / JSON,
``{"ok": ..., "result"|"error_code"...}`` envelopes, HTTP status = error_code),
validates like the real server (HTML entities, lengths, callback_data, "message
is not modified", chat errors, flood control) and records everything the bot did
for assertions.  Test controls are plain thread-safe methods: call them from the
test, never from inside the server loop.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import html
import itertools
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, TypeVar

from aiohttp import web

__all__ = [
    "Answer",
    "ApiError",
    "Call",
    "CallbackAnswer",
    "Event",
    "FakeTelegram",
    "FloodLimits",
    "ParsedText",
    "SentMessage",
    "UploadedFile",
    "Window",
    "parse_html",
    "utf16_len",
]

_LOG = logging.getLogger(__name__)
T = TypeVar("T")

JSON = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

# Update types delivered when allowed_updates is empty / never set.
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of a message"
)
QUERY_TOO_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


class ApiError(Exception):
    """An error answered to the client: HTTP status = ``code``."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def _bad(description: str, parameters: JSON | None = None) -> ApiError:
    return ApiError(400, f"Bad Request: {description}", parameters)


# --------------------------------------------------------------------------- HTML


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


@dataclass(frozen=True)
class ParsedText:
    text: str
    entities: list[JSON]


_HTML_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
     "tg-emoji", "span", "pre", "code", "blockquote"}
)
_SIMPLE_ENTITY = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "tg-spoiler": "spoiler", "span": "spoiler", "code": "code",
}
_SPACES = " \t\r\n\v\f\0"
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class _HtmlError(Exception):
    pass


@dataclass
class _OpenTag:
    name: str
    argument: str
    offset: int
    expandable: bool = False


def _decode_entity(src: str, pos: int, *, need_semicolon: bool) -> tuple[str, int] | None:
    """Decode an HTML entity at ``src[pos] == '&'`` the way TDLib does."""
    end = pos + 1
    n = len(src)
    if end < n and src[end] == "#":
        end += 1
        value = 0
        hexadecimal = end < n and src[end] == "x"
        if hexadecimal:
            end += 1
        start_digits = end
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        while end < n and src[end] in digits:
            end += 1
        if end == start_digits or end - pos >= 10:
            return None
        value = int(src[start_digits:end], 16 if hexadecimal else 10)
        if value == 0 or value >= 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while end < n and src[end].isascii() and src[end].isalpha():
            end += 1
        char = _NAMED_ENTITIES.get(src[pos + 1 : end], "")
        if not char:
            return None
    if end < n and src[end] == ";":
        return char, end + 1
    if need_semicolon:
        return None
    return char, end


def parse_html(source: str, *, strict_ampersand: bool = True) -> ParsedText:
    """Parse Telegram's HTML subset into plain text and entities (UTF-16 offsets).

    Follows TDLib's parser (and its error wording).  With ``strict_ampersand`` a
    bare ``&`` that does not start ``&lt;``/``&gt;``/``&amp;``/``&quot;``/``&#N;``
    is rejected; the real server lets it through as text, but it always means
    the caller forgot to escape.

    Raises ``_HtmlError`` with the text that follows "can't parse entities: ".
    """
    n = len(source)
    out: list[str] = []
    u16 = 0
    stack: list[_OpenTag] = []
    entities: list[JSON] = []

    def at(k: int) -> str:
        return source[k] if k < n else "\0"

    def byte_offset(k: int) -> int:
        return len(source[:k].encode("utf-8"))

    def emit(text: str) -> None:
        nonlocal u16
        out.append(text)
        u16 += utf16_len(text)

    i = 0
    while i < n:
        c = source[i]
        if c == "&":
            decoded = _decode_entity(source, i, need_semicolon=strict_ampersand)
            if decoded is not None:
                emit(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                raise _HtmlError(
                    f'Unescaped "&" at byte offset {byte_offset(i)}; use "&amp;" '
                    "(the real server would show it as text)"
                )
        if c != "<":
            emit(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != "/":
            while at(i) not in _SPACES and at(i) != ">":
                i += 1
            if i >= n:
                raise _HtmlError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            tag = source[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise _HtmlError(
                    f'Unsupported start tag "{tag}" at byte offset {byte_offset(begin)}'
                )
            argument = ""
            expandable = False
            while at(i) != ">":
                while i < n and at(i) in _SPACES:
                    i += 1
                if at(i) == ">":
                    break
                if i >= n:
                    raise _HtmlError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
                name_begin = i
                while at(i) not in _SPACES and at(i) not in "=>":
                    i += 1
                attribute = source[name_begin:i]
                if not attribute:
                    raise _HtmlError(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{byte_offset(begin)}"
                    )
                while i < n and at(i) in _SPACES:
                    i += 1
                if at(i) != "=":
                    if tag == "blockquote" and attribute.lower() == "expandable":
                        expandable = True
                        continue
                    raise _HtmlError(
                        f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                        f"at byte offset {byte_offset(begin)}"
                    )
                i += 1
                while i < n and at(i) in _SPACES:
                    i += 1
                if i >= n:
                    raise _HtmlError(
                        f'Unclosed start tag "{tag}" at byte offset {byte_offset(begin)}'
                    )
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = source[token_begin:i].lower()
                    if at(i) not in _SPACES and at(i) != ">":
                        raise _HtmlError(
                            f"Unexpected end of name token at byte offset "
                            f"{byte_offset(token_begin)}"
                        )
                else:
                    quote = source[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and source[i] != quote:
                        if source[i] == "&":
                            decoded = _decode_entity(source, i, need_semicolon=False)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(source[i])
                        i += 1
                    if i >= n:
                        raise _HtmlError(
                            f"Unclosed start tag at byte offset {byte_offset(begin)}"
                        )
                    i += 1
                    value = "".join(chars)
                attribute = attribute.lower()
                if tag == "a" and attribute == "href":
                    argument = value
                elif tag == "code" and attribute == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attribute == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attribute == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise _HtmlError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
                )
            stack.append(_OpenTag(tag, argument, u16, expandable))
            i += 1  # '>'
            continue

        # End tag.
        if not stack:
            raise _HtmlError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
        while at(i) not in _SPACES and at(i) != ">":
            i += 1
        end_name = source[begin + 2 : i].lower()
        while i < n and at(i) in _SPACES:
            i += 1
        if at(i) != ">":
            raise _HtmlError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
        i += 1
        opened = stack.pop()
        if end_name and end_name != opened.name:
            raise _HtmlError(
                f"Unmatched end tag at byte offset {byte_offset(begin)}, expected "
                f'"</{opened.name}>", found "</{end_name}>"'
            )
        length = u16 - opened.offset
        if length <= 0:
            continue
        entity: JSON = {"offset": opened.offset, "length": length}
        if opened.name == "a":
            url = opened.argument or "".join(out)[-length:]
            if url.startswith("tg://user?id="):
                entity["type"] = "text_mention"
                entity["user"] = {"id": int(url.split("=", 1)[1] or 0), "is_bot": False,
                                  "first_name": "User"}
            else:
                entity.update(type="text_link", url=url)
        elif opened.name == "pre":
            entity["type"] = "pre"
            if opened.argument:
                entity["language"] = opened.argument
        elif opened.name == "code" and opened.argument and stack and stack[-1].name == "pre" \
                and stack[-1].offset == opened.offset:
            stack[-1].argument = opened.argument  # <pre><code class="language-x">
            continue
        elif opened.name == "blockquote":
            entity["type"] = "expandable_blockquote" if opened.expandable else "blockquote"
        elif opened.name == "tg-emoji":
            entity.update(type="custom_emoji", custom_emoji_id=opened.argument)
        else:
            entity["type"] = _SIMPLE_ENTITY[opened.name]
        entities.append(entity)

    if stack:
        raise _HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(out), entities)


def _trim(text: str, entities: list[JSON]) -> ParsedText:
    """Strip leading/trailing whitespace as the server does, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return ParsedText(text, entities)
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept: list[JSON] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return ParsedText(stripped, kept)


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def _command_entities(text: str) -> list[JSON]:
    entities = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {"type": "bot_command", "offset": utf16_len(text[: match.start()]),
             "length": utf16_len(match.group())}
        )
    return entities


# --------------------------------------------------------------------------- flood control


@dataclass(frozen=True)
class Window:
    """At most ``count`` messages in any ``period`` seconds (sliding window)."""

    count: int
    period: float


@dataclass(frozen=True)
class FloodLimits:
    """Flood limits, measured on the fake's clock (see ``FakeTelegram.time_scale``).

    ``group`` applies to chats with a negative id, ``private`` to the others.
    The private window (3 in 3 s) means "about 1 per second, small bursts ok".
    """

    overall: Window = Window(30, 1.0)
    group: Window = Window(20, 60.0)
    private: Window = Window(3, 3.0)
    methods: frozenset[str] = frozenset(
        {"sendmessage", "sendphoto", "senddocument", "editmessagetext",
         "editmessagereplymarkup", "editmessagecaption"}
    )


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class UploadedFile:
    chat_id: int
    message_id: int
    kind: str  # "document" | "photo"
    file_id: str
    file_unique_id: str
    filename: str | None
    mime_type: str | None
    content: bytes
    caption: str | None


@dataclass(frozen=True)
class SentMessage:
    """A message as currently visible in a chat."""

    chat_id: int
    message_id: int
    date: int
    kind: str  # "text" | "photo" | "document" | "service"
    text: str | None  # rendered plain text (the caption for photos/documents)
    html: str | None  # as sent with parse_mode=HTML, else the HTML-escaped text
    parse_mode: str | None
    entities: list[JSON]
    reply_markup: JSON | None
    from_bot: bool
    user_id: int | None
    edited: bool
    reply_to_message_id: int | None
    message_thread_id: int | None
    file: UploadedFile | None
    raw: JSON  # the Message object as the API returns it

    @property
    def buttons(self) -> list[list[JSON]]:
        if not self.reply_markup:
            return []
        return [list(row) for row in self.reply_markup.get("inline_keyboard", [])]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in _iter_buttons(self.reply_markup)
                if "callback_data" in b]


@dataclass(frozen=True)
class Event:
    """One send/edit/delete/pin performed by the bot, in order."""

    kind: str  # "send" | "edit" | "delete" | "pin" | "unpin"
    method: str
    chat_id: int
    message_id: int
    text: str | None
    html: str | None
    reply_markup: JSON | None
    at: float  # the fake clock


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    chat_id: int | None
    message_id: int | None
    user_id: int
    data: str | None


@dataclass(frozen=True)
class Call:
    """One HTTP request to a Bot API method, with decoded parameters."""

    method: str
    params: JSON
    files: dict[str, tuple[str | None, int]]  # field -> (filename, size)
    status: int


# --------------------------------------------------------------------------- state


def _form_parts(content_type: str, body: bytes) -> Iterable[tuple[str, str | None, str | None, bytes]]:
    """(name, filename, content type, content) of each part of a multipart/form-data body.

    Parsed here from the whole body rather than with aiohttp's streaming reader: that reader
    takes a different path (and warns) depending on how the network split the upload.
    """
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise _bad("multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    # The first delimiter may open the body; every later one follows a CRLF that is not content.
    _preamble, *chunks = (b"\r\n" + body).split(b"\r\n" + delimiter)
    for chunk in chunks:
        if chunk.startswith(b"--"):  # the closing delimiter
            return
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise _bad("multipart part without a blank line after its headers")
        part = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            part[key.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            yield name, part.get_filename(), part.get("Content-Type"), content
    raise _bad("multipart body without its closing boundary")


@dataclass
class _Upload:
    filename: str | None
    content: bytes
    content_type: str | None


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None
    username: str | None
    first_name: str | None
    bot_status: str
    members: dict[int, str] = field(default_factory=dict)
    migrated_to: int | None = None
    blocked: bool = False
    next_message_id: int = 1
    messages: dict[int, _Msg] = field(default_factory=dict)
    pinned: int | None = None


@dataclass
class _Msg:
    chat_id: int
    message_id: int
    date: int
    kind: str
    from_user: JSON | None
    from_bot: bool
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    source: str | None = None
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    file: UploadedFile | None = None
    reply_to: int | None = None
    thread_id: int | None = None
    edit_date: int | None = None
    deleted: bool = False
    extra: JSON = field(default_factory=dict)


@dataclass
class _Query:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answered: bool = False


@dataclass
class _Injection:
    method: str
    error: ApiError
    remaining: int
    chat_id: int | None


@dataclass
class _Garble:
    method: str
    body: bytes
    remaining: int
    chat_id: int | None


@dataclass(frozen=True)
class Answer:
    """A successful answer that carried a message, and when (wall clock) it was written."""

    method: str
    chat_id: int
    message_id: int
    at: float  # time.time() just before the answer was handed to the HTTP server


@dataclass
class _SlowAnswer:
    method: str
    seconds: float
    remaining: int
    chat_id: int | None


_STRING_PARAMS = frozenset(
    {"text", "caption", "parse_mode", "callback_query_id", "url", "secret_token",
     "inline_message_id", "language_code", "description", "short_description", "name",
     "title", "photo", "document", "file_id", "ip_address", "certificate", "emoji",
     "business_connection_id", "message_effect_id", "sticker", "custom_title"}
)


def _decode_param(name: str, value: Any) -> Any:
    """PTB sends every non-string value json.dumps'ed inside a form field."""
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeTelegram:
    """A fake Bot API server.  Use as a context manager or call start()/stop().

    Options:
      flood: FloodLimits, or None to disable flood control.
      time_scale: the fake clock (flood windows, callback expiry) runs this many
        times faster than real time.  ``retry_after`` is reported in real
        seconds (what a client has to sleep).  ``advance(s)`` jumps the clock.
      fractional_retry_after: report retry_after as a float (ms precision)
        instead of the real server's whole seconds (>= 1); PTB accepts both.
      callback_ttl: seconds (fake clock) after which a callback query expires.
      strict_html: reject a bare "&" in HTML (see parse_html).
    """

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        bot_first_name: str = "Triage Bot",
        bot_username: str = "triage_test_bot",
        flood: FloodLimits | None = FloodLimits(),  # noqa: B008 - frozen
        time_scale: float = 1.0,
        fractional_retry_after: bool = False,
        callback_ttl: float = 900.0,
        strict_html: bool = True,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.token = token
        self.bot_user: JSON = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.flood = flood
        self.time_scale = time_scale
        self.fractional_retry_after = fractional_retry_after
        self.callback_ttl = callback_ttl
        self.strict_html = strict_html

        self._lock = threading.RLock()
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._users: dict[int, JSON] = {}
        self._chats: dict[int, _Chat] = {}
        self._updates: list[JSON] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._poll_generation = 0
        self._webhook: JSON | None = None
        self._queries: dict[str, _Query] = {}
        self._query_ids = itertools.count(5_000_000_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._files: dict[str, UploadedFile] = {}
        self._file_paths: dict[str, str] = {}
        self._injections: list[_Injection] = []
        self._slow_answers: list[_SlowAnswer] = []
        self._garbles: list[_Garble] = []
        self._answer_log: list[Answer] = []
        self._flood_overall: collections.deque[float] = collections.deque()
        self._flood_chats: dict[int, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._flood_errors: collections.Counter[int | None] = collections.Counter()
        self._commands: dict[str, list[JSON]] = {}
        self._calls: list[Call] = []
        self._history: list[Event] = []
        self._answers: list[CallbackAnswer] = []
        self._uploads: list[UploadedFile] = []
        self._server_errors: list[str] = []

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._updates_event: asyncio.Event | None = None
        self._closing = False
        self._startup_error: BaseException | None = None
        self.port: int | None = None

        self._methods: dict[str, Callable[[JSON, dict[str, _Upload]], Any]] = {
            "getme": self._get_me,
            "getupdates": lambda p, f: None,  # async, see _get_updates
            "logout": lambda p, f: True,
            "close": lambda p, f: True,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "sendphoto": lambda p, f: self._send_file(p, f, "photo"),
            "senddocument": lambda p, f: self._send_file(p, f, "document"),
            "getfile": self._get_file,
            "deletemessage": self._delete_message,
            "getchatmember": self._get_chat_member,
            "getchat": self._get_chat,
            "pinchatmessage": self._pin_chat_message,
            "unpinchatmessage": self._unpin_chat_message,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "leavechat": self._leave_chat,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder.base_url`` / ``Bot(base_url=...)``; PTB appends the token."""
        return f"http://127.0.0.1:{self._require_port()}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self._require_port()}/file/bot"

    def _require_port(self) -> int:
        if self.port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self.port

    def __enter__(self) -> FakeTelegram:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeTelegram:
        if self._thread is not None:
            raise RuntimeError("FakeTelegram already started")
        ready = threading.Event()
        self._closing = False
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="fake-telegram", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeTelegram did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("FakeTelegram failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._thread = None
            self._loop = None

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._updates_event = asyncio.Event()
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0,
            handler_cancellation=True,
        )
        await runner.setup()
        self._runner = runner
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise

    async def _shutdown(self) -> None:
        self._closing = True
        if self._updates_event is not None:
            self._updates_event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _notify(self) -> None:
        """Wake long polls (called with the lock held, from any thread)."""
        loop, event = self._loop, self._updates_event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The fake clock in seconds: real time × time_scale, plus advance()."""
        return (time.monotonic() - self._t0) * self.time_scale + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward (flood windows, callback expiry)."""
        with self._lock:
            self._offset += seconds

    # ------------------------------------------------------------------ HTTP

    async def _read_params(self, request: web.Request) -> tuple[JSON, dict[str, _Upload]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, _Upload] = {}
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise _bad("can't parse JSON object") from exc
                if not isinstance(body, dict):
                    raise _bad("can't parse JSON object")
                raw.update(body)
            elif ctype.startswith("multipart/"):
                body = await request.read()
                for name, filename, part_type, content in _form_parts(request.headers["Content-Type"], body):
                    if filename is not None:
                        files[name] = _Upload(filename, content, part_type)
                    else:
                        try:
                            raw[name] = content.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            raise _bad(f"can't decode parameter {name!r} as UTF-8") from exc
            elif ctype == "application/x-www-form-urlencoded":
                form = await request.post()
                raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        return {k: _decode_param(k, v) for k, v in raw.items()}, files

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        params: JSON = {}
        files: dict[str, _Upload] = {}
        status = 499  # nginx's "client closed request": the client went away mid-call
        try:
            status, body = await self._dispatch(request, method, params, files)
        finally:
            with self._lock:
                self._calls.append(
                    Call(method, params,
                         {k: (u.filename, len(u.content)) for k, u in files.items()}, status)
                )
        if isinstance(body, bytes):  # a garbled answer (see garble_answer)
            return web.Response(body=body, status=status, content_type="application/json")
        result = body.get("result")
        if status == 200 and isinstance(result, dict) and "message_id" in result:
            chat = result.get("chat") or {}
            with self._lock:
                self._answer_log.append(Answer(method, chat.get("id", 0), result["message_id"], time.time()))
        return web.json_response(body, status=status)

    async def _dispatch(self, request: web.Request, method: str, params: JSON,
                        files: dict[str, _Upload]) -> tuple[int, JSON | bytes]:
        """Answer one call; fills ``params``/``files`` in place for the call log."""
        try:
            decoded, uploads = await self._read_params(request)
            params.update(decoded)
            files.update(uploads)
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(
                    404, f"Not Found: method {method} is not implemented by FakeTelegram"
                )
            with self._lock:
                self._raise_injected(method, params)
            if method.lower() == "getupdates":
                result = await self._get_updates(params)
            else:
                with self._lock:
                    result = handler(params, files)
            await self._answer_late(method, params)
            garbled = self._garbled(method, params)
            if garbled is not None:
                return 200, garbled
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.code, exc.body()
        except Exception as exc:  # a bug in the fake: make it loud, not a hang
            _LOG.exception("FakeTelegram failed on %s", method)
            with self._lock:
                self._server_errors.append(f"{method}: {exc!r}")
            status = 500
            body = ApiError(500, f"Internal Server Error: FakeTelegram bug: {exc!r}").body()
        return status, body

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        with self._lock:
            file_id = self._file_paths.get(request.match_info["path"])
            stored = self._files.get(file_id) if file_id else None
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        return web.Response(body=stored.content,
                            content_type=stored.mime_type or "application/octet-stream")

    # ------------------------------------------------------------------ param helpers

    @staticmethod
    def _int(params: JSON, name: str, *, required: bool = False, missing: str = "") -> int | None:
        value = params.get(name)
        if value is None or value == "":
            if required:
                raise _bad(missing or f"{name} is empty")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(f"invalid {name} specified")
        return value

    @staticmethod
    def _bool(params: JSON, name: str) -> bool:
        return params.get(name) in (True, "true", "True", 1, "1")

    def _chat(self, params: JSON, *, for_write: bool = True) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat: _Chat | None = None
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            chat = next((c for c in self._chats.values() if c.username == chat_id[1:]), None)
        elif isinstance(chat_id, int) and not isinstance(chat_id, bool):
            chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad("chat not found")
        if chat.migrated_to is not None:
            raise _bad("group chat was upgraded to a supergroup chat",
                       {"migrate_to_chat_id": chat.migrated_to})
        if for_write:
            if chat.type == "private" and chat.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if chat.bot_status == "kicked":
                raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
            if chat.bot_status == "left":
                raise ApiError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
        return chat

    def _render(self, text: Any, parse_mode: Any, entities: Any, *, caption: bool) -> tuple[
        str, list[JSON], str | None, str | None
    ]:
        """Return (plain text, entities, raw source, parse_mode)."""
        limit = MAX_CAPTION_LENGTH if caption else MAX_TEXT_LENGTH
        source = "" if text is None else str(text)
        mode = parse_mode if isinstance(parse_mode, str) and parse_mode else None
        if mode is not None and mode.lower() == "html":
            try:
                parsed = parse_html(source, strict_ampersand=self.strict_html)
            except _HtmlError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
            mode = "HTML"
        elif mode is None or mode.lower() in ("markdown", "markdownv2"):
            # Markdown is not parsed by the fake: text and entities pass through.
            given = entities if isinstance(entities, list) else []
            parsed = ParsedText(source, [dict(e) for e in given if isinstance(e, dict)])
        else:
            raise _bad("unsupported parse_mode")
        parsed = _trim(parsed.text, parsed.entities)
        if not parsed.text and not caption:
            raise _bad("message text is empty")
        if len(parsed.text) > limit:
            raise _bad("message caption is too long" if caption else "message is too long")
        return parsed.text, parsed.entities, source, mode

    @staticmethod
    def _markup(value: Any) -> JSON | None:
        """Validate reply_markup; return the inline keyboard to attach (or None)."""
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _bad("can't parse reply keyboard markup JSON object") from None
        if not isinstance(value, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in value:
            return None  # reply keyboards / force_reply are not attached to the message
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array "
                       "of Arrays")
        kinds = ("url", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
                 "switch_inline_query_chosen_chat", "callback_game", "pay", "web_app",
                 "copy_text")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad("can't parse inline keyboard button: Field \"text\" must be of "
                               "type String")
                if "callback_data" in button:
                    data = button["callback_data"]
                    size = len(data.encode("utf-8")) if isinstance(data, str) else 0
                    if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                        raise _bad("BUTTON_DATA_INVALID")
                elif not any(k in button for k in kinds):
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed "
                               "in the inline keyboard")
        if not any(rows):
            return None
        return {"inline_keyboard": copy.deepcopy(rows)}

    def _check_flood(self, method: str, chat: _Chat) -> None:
        limits = self.flood
        if limits is None or method.lower() not in limits.methods:
            return
        now = self.now()
        per_chat = limits.group if chat.id < 0 else limits.private
        queues = ((self._flood_overall, limits.overall), (self._flood_chats[chat.id], per_chat))
        wait = 0.0
        for queue, window in queues:
            while queue and queue[0] <= now - window.period:
                queue.popleft()
            if window.count <= 0:
                wait = max(wait, window.period)
            elif len(queue) >= window.count:
                wait = max(wait, queue[-window.count] + window.period - now)
        if wait > 0:
            real = wait / self.time_scale
            retry: int | float
            if self.fractional_retry_after:
                retry = max(0.001, math.ceil(real * 1000) / 1000)
            else:
                retry = max(1, math.ceil(real - 1e-9))
            self._flood_errors[chat.id] += 1
            raise ApiError(429, f"Too Many Requests: retry after {retry}",
                           {"retry_after": retry})
        for queue, _ in queues:
            queue.append(now)

    def _raise_injected(self, method: str, params: JSON) -> None:
        chat_id = params.get("chat_id")
        for injection in self._injections:
            if injection.remaining <= 0:
                continue
            if injection.method not in ("*", method.lower()):
                continue
            if injection.chat_id is not None and injection.chat_id != chat_id:
                continue
            injection.remaining -= 1
            if injection.error.code == 429:
                self._flood_errors[chat_id if isinstance(chat_id, int) else None] += 1
            raise injection.error

    # ------------------------------------------------------------------ JSON shapes

    def _chat_json(self, chat: _Chat) -> JSON:
        data: JSON = {"id": chat.id, "type": chat.type}
        if chat.title is not None:
            data["title"] = chat.title
        if chat.username is not None:
            data["username"] = chat.username
        if chat.first_name is not None:
            data["first_name"] = chat.first_name
        return data

    def _message_json(self, msg: _Msg, *, nested: bool = True) -> JSON:
        data: JSON = {
            "message_id": msg.message_id,
            "date": msg.date,
            "chat": self._chat_json(self._chats[msg.chat_id]),
        }
        if msg.from_user is not None:
            data["from"] = dict(msg.from_user)
        if msg.thread_id is not None:
            data["message_thread_id"] = msg.thread_id
        if nested and msg.reply_to is not None:
            target = self._chats[msg.chat_id].messages.get(msg.reply_to)
            if target is not None and not target.deleted:
                data["reply_to_message"] = self._message_json(target, nested=False)
        if msg.edit_date is not None:
            data["edit_date"] = msg.edit_date
        if msg.kind == "text":
            data["text"] = msg.text
            if msg.entities:
                data["entities"] = copy.deepcopy(msg.entities)
        elif msg.kind in ("photo", "document") and msg.file is not None:
            data[msg.kind] = self._file_json(msg.file)
            if msg.text:
                data["caption"] = msg.text
                if msg.entities:
                    data["caption_entities"] = copy.deepcopy(msg.entities)
        if msg.reply_markup is not None:
            data["reply_markup"] = copy.deepcopy(msg.reply_markup)
        data.update(copy.deepcopy(msg.extra))
        return data

    @staticmethod
    def _file_json(stored: UploadedFile) -> Any:
        if stored.kind == "photo":
            return [{"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                     "file_size": len(stored.content), "width": 800, "height": 600}]
        data: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                      "file_size": len(stored.content)}
        if stored.filename:
            data["file_name"] = stored.filename
        if stored.mime_type:
            data["mime_type"] = stored.mime_type
        return data

    def _user(self, user_id: int) -> JSON:
        if user_id == self.bot_user["id"]:
            return dict(self.bot_user)
        if user_id not in self._users:
            self._users[user_id] = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        return dict(self._users[user_id])

    def _member_json(self, user: JSON, status: str) -> JSON:
        data: JSON = {"status": status, "user": user}
        if status == "creator":
            data["is_anonymous"] = False
        elif status == "administrator":
            data.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                can_delete_messages=True, can_manage_video_chats=True,
                can_restrict_members=True, can_promote_members=False, can_change_info=True,
                can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_pin_messages=True,
            )
        elif status == "restricted":
            data.update(
                is_member=True, until_date=0, can_send_messages=False, can_send_audios=False,
                can_send_documents=False, can_send_photos=False, can_send_videos=False,
                can_send_video_notes=False, can_send_voice_notes=False, can_send_polls=False,
                can_send_other_messages=False, can_add_web_page_previews=False,
                can_change_info=False, can_invite_users=False, can_pin_messages=False,
                can_manage_topics=False, can_edit_tag=False, can_react_to_messages=False,
            )
        elif status == "kicked":
            data["until_date"] = 0
        return data

    # ------------------------------------------------------------------ store helpers

    def _new_message(self, chat: _Chat, **fields: Any) -> _Msg:
        msg = _Msg(chat_id=chat.id, message_id=chat.next_message_id, date=int(time.time()),
                   **fields)
        chat.next_message_id += 1
        chat.messages[msg.message_id] = msg
        return msg

    def _find(self, chat: _Chat, params: JSON, not_found: str) -> _Msg:
        message_id = self._int(params, "message_id", required=True,
                               missing="message identifier is not specified")
        msg = chat.messages.get(message_id)  # type: ignore[arg-type]
        if msg is None or msg.deleted:
            raise _bad(not_found)
        return msg

    def _record(self, kind: str, method: str, msg: _Msg) -> None:
        self._history.append(
            Event(kind, method, msg.chat_id, msg.message_id, msg.text, self._html_of(msg),
                  copy.deepcopy(msg.reply_markup), self.now())
        )

    @staticmethod
    def _html_of(msg: _Msg) -> str | None:
        if msg.text is None:
            return None
        if msg.parse_mode == "HTML" and msg.source is not None:
            return msg.source
        return html.escape(msg.text, quote=False)

    def _enqueue(self, kind: str, payload: JSON) -> JSON:
        """Queue an update; like the server, types outside allowed_updates are not kept."""
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        if kind in self._allowed_updates:
            self._updates.append(update)
            self._notify()
        return copy.deepcopy(update)

    def _reply_to(self, chat: _Chat, params: JSON) -> int | None:
        target = params.get("reply_to_message_id")
        reply_parameters = params.get("reply_parameters")
        allow_missing = self._bool(params, "allow_sending_without_reply")
        if isinstance(reply_parameters, dict):
            target = reply_parameters.get("message_id")
            allow_missing = bool(reply_parameters.get("allow_sending_without_reply"))
        if target is None:
            return None
        found = chat.messages.get(target) if isinstance(target, int) else None
        if found is None or found.deleted:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return int(target)

    # ------------------------------------------------------------------ methods

    def _get_me(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    def _delete_webhook(self, params: JSON, files: dict[str, _Upload]) -> bool:
        self._webhook = None
        if self._bool(params, "drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_webhook(self, params: JSON, files: dict[str, _Upload]) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._delete_webhook(params, files)
        if not str(url).startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES
        self._webhook = {"url": url, "secret_token": params.get("secret_token"),
                         "allowed_updates": params.get("allowed_updates"),
                         "max_connections": params.get("max_connections", 40)}
        if self._bool(params, "drop_pending_updates"):
            self._updates.clear()
        self._notify()  # a pending long poll now conflicts
        return True

    def _get_webhook_info(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        info: JSON = {"url": self._webhook["url"] if self._webhook else "",
                      "has_custom_certificate": False,
                      "pending_update_count": len(self._updates)}
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
        return info

    async def _get_updates(self, params: JSON) -> list[JSON]:
        loop = asyncio.get_running_loop()
        event = self._updates_event
        assert event is not None
        with self._lock:
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            self._poll_generation += 1
            generation = self._poll_generation
            offset = self._int(params, "offset") or 0
            limit = min(100, max(1, self._int(params, "limit") or 100))
            timeout = params.get("timeout") or 0
            if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
                raise _bad("invalid timeout specified")
            allowed = params.get("allowed_updates")
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES
        event.set()  # an older long poll is now terminated
        deadline = loop.time() + float(timeout)
        while True:
            event.clear()
            with self._lock:
                if generation != self._poll_generation:
                    raise ApiError(409, POLL_CONFLICT)
                if self._webhook is not None:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                if offset < 0:
                    del self._updates[: max(0, len(self._updates) + offset)]
                    offset = 0
                elif offset > 0:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                result = copy.deepcopy(self._updates[:limit])
            remaining = deadline - loop.time()
            if result or self._closing or remaining <= 0:
                return result
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _send_message(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        chat = self._chat(params)
        text, entities, source, mode = self._render(
            params.get("text"), params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat, params)
        self._check_flood("sendMessage", chat)
        msg = self._new_message(
            chat, kind="text", from_user=dict(self.bot_user), from_bot=True, text=text,
            entities=entities, source=source, parse_mode=mode, reply_markup=markup,
            reply_to=reply_to, thread_id=self._int(params, "message_thread_id"),
        )
        self._record("send", "sendMessage", msg)
        return self._message_json(msg)

    def _editable(self, params: JSON) -> tuple[_Chat, _Msg]:
        if params.get("inline_message_id"):
            raise _bad("inline messages are not supported by FakeTelegram")
        chat = self._chat(params)
        msg = self._find(chat, params, "message to edit not found")
        if not msg.from_bot:
            raise _bad("message can't be edited")
        return chat, msg

    def _edit_message_text(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        chat, msg = self._editable(params)
        if msg.kind != "text":
            raise _bad("there is no text in the message to edit")
        text, entities, source, mode = self._render(
            params.get("text"), params.get("parse_mode"), params.get("entities"), caption=False
        )
        return self._apply_edit(chat, msg, "editMessageText", params, text, entities, source,
                                mode)

    def _edit_message_caption(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        chat, msg = self._editable(params)
        if msg.kind not in ("photo", "document"):
            raise _bad("there is no caption in the message to edit")
        text, entities, source, mode = self._render(
            params.get("caption"), params.get("parse_mode"), params.get("caption_entities"),
            caption=True,
        )
        return self._apply_edit(chat, msg, "editMessageCaption", params, text, entities, source,
                                mode)

    def _apply_edit(self, chat: _Chat, msg: _Msg, method: str, params: JSON, text: str,
                    entities: list[JSON], source: str | None, mode: str | None) -> JSON:
        # Like the real server, an edit without reply_markup removes the keyboard.
        markup = self._markup(params.get("reply_markup"))
        if (text or None) == (msg.text or None) and entities == msg.entities \
                and markup == msg.reply_markup:
            raise _bad(NOT_MODIFIED[len("Bad Request: "):])
        self._check_flood(method, chat)
        msg.text, msg.entities, msg.source, msg.parse_mode = text, entities, source, mode
        msg.reply_markup = markup
        msg.edit_date = int(time.time())
        self._record("edit", method, msg)
        return self._message_json(msg)

    def _edit_message_reply_markup(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        chat, msg = self._editable(params)
        markup = self._markup(params.get("reply_markup"))
        if markup == msg.reply_markup:
            raise _bad(NOT_MODIFIED[len("Bad Request: "):])
        self._check_flood("editMessageReplyMarkup", chat)
        msg.reply_markup = markup
        msg.edit_date = int(time.time())
        self._record("edit", "editMessageReplyMarkup", msg)
        return self._message_json(msg)

    def _answer_callback_query(self, params: JSON, files: dict[str, _Upload]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        query = self._queries.get(query_id)
        if query is None or query.answered or self.now() - query.created > self.callback_ttl:
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get("text")
        if isinstance(text, str) and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        query.answered = True
        self._answers.append(
            CallbackAnswer(query_id, text if isinstance(text, str) else None,
                           self._bool(params, "show_alert"), params.get("url"),
                           self._int(params, "cache_time"), query.chat_id, query.message_id,
                           query.user_id, query.data)
        )
        return True

    def _send_file(self, params: JSON, files: dict[str, _Upload], kind: str) -> JSON:
        method = "sendPhoto" if kind == "photo" else "sendDocument"
        chat = self._chat(params)
        caption, entities, source, mode = self._render(
            params.get("caption"), params.get("parse_mode"), params.get("caption_entities"),
            caption=True,
        )
        markup = self._markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat, params)
        upload = files.get(kind)
        reference = params.get(kind)
        if upload is None and isinstance(reference, str) and reference.startswith("attach://"):
            upload = files.get(reference[len("attach://"):])
        existing: UploadedFile | None = None
        if upload is not None:
            if not upload.content:
                raise _bad("file must be non-empty")
            if len(upload.content) > (MAX_PHOTO_BYTES if kind == "photo" else MAX_UPLOAD_BYTES):
                raise ApiError(413, "Request Entity Too Large")
        elif isinstance(reference, str) and reference:
            existing = self._files.get(reference)
            if existing is None:
                if reference.startswith(("http://", "https://")):
                    raise _bad("failed to get HTTP URL content")
                raise _bad("wrong file identifier/HTTP URL specified")
        else:
            raise _bad(f"there is no {kind} in the request")
        self._check_flood(method, chat)
        msg = self._new_message(
            chat, kind=kind, from_user=dict(self.bot_user), from_bot=True, text=caption or None,
            entities=entities, source=source, parse_mode=mode, reply_markup=markup,
            reply_to=reply_to, thread_id=self._int(params, "message_thread_id"),
        )
        if upload is not None:
            n = next(self._file_ids)
            prefix = "AgACAgI" if kind == "photo" else "BQACAgI"
            stored = UploadedFile(
                chat.id, msg.message_id, kind, f"{prefix}AAxkB{n:012d}", f"AQAD{n:08d}",
                upload.filename if kind == "document" else None,
                (upload.content_type or "application/octet-stream") if kind == "document"
                else None,
                upload.content, caption or None,
            )
            self._files[stored.file_id] = stored
        else:
            assert existing is not None
            stored = UploadedFile(chat.id, msg.message_id, kind, existing.file_id,
                                  existing.file_unique_id, existing.filename, existing.mime_type,
                                  existing.content, caption or None)
        msg.file = stored
        self._uploads.append(stored)
        self._record("send", method, msg)
        return self._message_json(msg)

    def _get_file(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        file_id = params.get("file_id")
        stored = self._files.get(file_id) if isinstance(file_id, str) else None
        if stored is None:
            raise _bad("invalid file_id")
        folder = "photos" if stored.kind == "photo" else "documents"
        suffix = (stored.filename or "file.jpg").rsplit(".", 1)[-1]
        path = f"{folder}/file_{stored.file_unique_id}.{suffix}"
        self._file_paths[path] = stored.file_id
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.content), "file_path": path}

    def _delete_message(self, params: JSON, files: dict[str, _Upload]) -> bool:
        chat = self._chat(params)
        msg = self._find(chat, params, "message to delete not found")
        if not msg.from_bot and chat.type != "private" \
                and chat.bot_status not in ("administrator", "creator"):
            raise _bad("message can't be deleted")
        msg.deleted = True
        self._record("delete", "deleteMessage", msg)
        return True

    def _get_chat_member(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        chat = self._chat(params, for_write=False)
        user_id = self._int(params, "user_id", required=True)
        assert user_id is not None
        if user_id == self.bot_user["id"]:
            return self._member_json(dict(self.bot_user), chat.bot_status)
        if user_id not in self._users:
            raise _bad("user not found")
        status = chat.members.get(user_id, "left")
        if chat.type == "private" and chat.id == user_id:
            status = "member"
        return self._member_json(self._user(user_id), status)

    def _get_chat(self, params: JSON, files: dict[str, _Upload]) -> JSON:
        chat = self._chat(params)
        info = self._chat_json(chat)
        info.update(
            accent_color_id=0, max_reaction_count=11,
            accepted_gift_types={"unlimited_gifts": False, "limited_gifts": False,
                                 "unique_gifts": False, "premium_subscription": False,
                                 "gifts_from_channels": False},
        )
        if chat.pinned is not None and chat.pinned in chat.messages:
            info["pinned_message"] = self._message_json(chat.messages[chat.pinned])
        return info

    def _pin_chat_message(self, params: JSON, files: dict[str, _Upload]) -> bool:
        chat = self._chat(params)
        msg = self._find(chat, params, "message to pin not found")
        if chat.type != "private" and chat.bot_status not in ("administrator", "creator"):
            raise _bad("not enough rights to manage pinned messages in the chat")
        chat.pinned = msg.message_id
        self._record("pin", "pinChatMessage", msg)
        return True

    def _unpin_chat_message(self, params: JSON, files: dict[str, _Upload]) -> bool:
        chat = self._chat(params)
        if chat.type != "private" and chat.bot_status not in ("administrator", "creator"):
            raise _bad("not enough rights to manage pinned messages in the chat")
        if chat.pinned is not None and chat.pinned in chat.messages:
            self._record("unpin", "unpinChatMessage", chat.messages[chat.pinned])
        chat.pinned = None
        return True

    @staticmethod
    def _commands_key(params: JSON) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _set_my_commands(self, params: JSON, files: dict[str, _Upload]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("commands must be an array of at most 100 BotCommand")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params)] = copy.deepcopy(commands)
        return True

    def _get_my_commands(self, params: JSON, files: dict[str, _Upload]) -> list[JSON]:
        return copy.deepcopy(self._commands.get(self._commands_key(params), []))

    def _delete_my_commands(self, params: JSON, files: dict[str, _Upload]) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _leave_chat(self, params: JSON, files: dict[str, _Upload]) -> bool:
        chat = self._chat(params)
        chat.bot_status = "left"
        return True

    # ------------------------------------------------------------------ test controls

    def add_user(self, user_id: int, first_name: str | None = None,
                 username: str | None = None, *, last_name: str | None = None,
                 language_code: str | None = None) -> JSON:
        """Register a (human) user; returns the User object."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}"}
        for key, value in (("last_name", last_name), ("username", username),
                           ("language_code", language_code)):
            if value is not None:
                user[key] = value
        with self._lock:
            self._users[user_id] = user
        return dict(user)

    def add_chat(self, chat_id: int, type: str | None = None, title: str | None = None, *,
                 username: str | None = None, bot_status: str | None = None,
                 members: Mapping[int, str] | None = None) -> JSON:
        """Register a chat the bot is in.  type defaults to supergroup/private by id sign.

        bot_status defaults to "administrator" in groups and "member" in private chats.
        For a private chat the id is the user's id (the user is added if unknown).
        """
        chat_type = type or ("supergroup" if chat_id < 0 else "private")
        with self._lock:
            first_name = None
            if chat_type == "private":
                user = self._user(chat_id)
                first_name = user["first_name"]
                username = username or user.get("username")
                title = None
            elif title is None:
                title = f"Chat {chat_id}"
            chat = _Chat(
                chat_id, chat_type, title, username, first_name,
                bot_status or ("member" if chat_type == "private" else "administrator"),
            )
            for user_id, status in (members or {}).items():
                self._user(user_id)
                chat.members[user_id] = status
            self._chats[chat_id] = chat
            return self._chat_json(chat)

    def set_member(self, chat_id: int, user_id: int, status: str = "member") -> None:
        """Set a user's status in a chat (creator/administrator/member/restricted/left/kicked)."""
        with self._lock:
            self._user(user_id)
            self._chats[chat_id].members[user_id] = status

    def kick_bot(self, chat_id: int, *, by_user_id: int | None = None,
                 notify: bool = True) -> None:
        """Remove the bot from a group; enqueues a my_chat_member update unless notify=False."""
        self._set_bot_status(chat_id, "kicked", by_user_id, notify)

    def block_bot(self, user_id: int) -> None:
        """The user blocked the bot: sends to the private chat answer 403."""
        with self._lock:
            if user_id not in self._chats:
                self.add_chat(user_id, "private")
            self._chats[user_id].blocked = True

    def set_bot_status(self, chat_id: int, status: str, *, notify: bool = False) -> None:
        self._set_bot_status(chat_id, status, None, notify)

    def _set_bot_status(self, chat_id: int, status: str, by_user_id: int | None,
                        notify: bool) -> None:
        with self._lock:
            chat = self._chats[chat_id]
            old = chat.bot_status
            chat.bot_status = status
            if notify:
                actor = self._user(by_user_id) if by_user_id is not None else None
                self._enqueue("my_chat_member", {
                    "chat": self._chat_json(chat),
                    "from": actor or {"id": 777000, "is_bot": False, "first_name": "Telegram"},
                    "date": int(time.time()),
                    "old_chat_member": self._member_json(dict(self.bot_user), old),
                    "new_chat_member": self._member_json(dict(self.bot_user), status),
                })

    def migrate_chat(self, old_id: int, new_id: int, *,
                     by_user_id: int | None = None) -> tuple[JSON, JSON]:
        """Upgrade group ``old_id`` to supergroup ``new_id``.

        Requests to the old id then answer 400 with parameters.migrate_to_chat_id, and
        the two service messages (migrate_to_chat_id in the old chat,
        migrate_from_chat_id in the new one) are enqueued; returns both updates.
        """
        with self._lock:
            old = self._chats[old_id]
            new = _Chat(new_id, "supergroup", old.title, None, None, old.bot_status,
                        dict(old.members))
            self._chats[new_id] = new
            actor = self._user(by_user_id) if by_user_id is not None else None
            to_msg = self._new_message(old, kind="service", from_user=actor, from_bot=False,
                                       extra={"migrate_to_chat_id": new_id})
            old.migrated_to = new_id
            from_msg = self._new_message(new, kind="service", from_user=actor, from_bot=False,
                                         extra={"migrate_from_chat_id": old_id})
            return (self._enqueue("message", self._message_json(to_msg)),
                    self._enqueue("message", self._message_json(from_msg)))

    def push_message(self, chat_id: int, user_id: int, text: str,
                     reply_to_message_id: int | None = None, *,
                     entities: list[JSON] | None = None,
                     message_thread_id: int | None = None) -> JSON:
        """A user writes ``text`` in a chat; enqueues and returns the ``message`` update.

        Bot commands get bot_command entities.  A private chat (chat_id == user_id) is
        created on first use; other chats must be added first.
        """
        with self._lock:
            user = self._user(user_id)
            if chat_id not in self._chats:
                if chat_id != user_id:
                    raise KeyError(f"unknown chat {chat_id}: call add_chat first")
                self.add_chat(chat_id, "private")
            chat = self._chats[chat_id]
            if chat.type != "private":
                chat.members.setdefault(user_id, "member")
            if reply_to_message_id is not None and reply_to_message_id not in chat.messages:
                raise KeyError(f"no message {reply_to_message_id} in chat {chat_id}")
            msg = self._new_message(
                chat, kind="text", from_user=user, from_bot=False, text=text,
                entities=entities if entities is not None else _command_entities(text),
                reply_to=reply_to_message_id, thread_id=message_thread_id,
            )
            return self._enqueue("message", self._message_json(msg))

    def push_update(self, payload: JSON) -> JSON:
        """Enqueue a raw update, e.g. {"edited_message": {...}}; update_id is assigned."""
        kinds = [k for k in payload if k != "update_id"]
        if len(kinds) != 1:
            raise ValueError("an update carries exactly one object")
        with self._lock:
            return self._enqueue(kinds[0], copy.deepcopy(payload[kinds[0]]))

    def press_button(self, chat_id: int, message_id: int, user_id: int,
                     callback_data: str, *, check: bool = True) -> str:
        """A user presses an inline button; enqueues a callback_query update; returns its id.

        With check=True the message must carry a button with that callback_data.
        """
        with self._lock:
            chat = self._chats[chat_id]
            msg = chat.messages.get(message_id)
            if msg is None or msg.deleted:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            if check and callback_data not in [
                b.get("callback_data") for b in _iter_buttons(msg.reply_markup)
            ]:
                raise ValueError(f"message {message_id} has no button {callback_data!r}")
            query_id = str(next(self._query_ids))
            self._queries[query_id] = _Query(query_id, user_id, chat_id, message_id,
                                             callback_data, self.now())
            self._enqueue("callback_query", {
                "id": query_id,
                "from": self._user(user_id),
                "message": self._message_json(msg),
                "chat_instance": str((chat_id * 2654435761) % 10**19),
                "data": callback_data,
            })
            return query_id

    def expire_callback(self, query_id: str) -> None:
        """Make a callback query too old to answer."""
        with self._lock:
            self._queries[query_id].created = -math.inf

    def inject_error(self, method: str, error_code: int, description: str,
                     parameters: JSON | None = None, times: int = 1, *,
                     chat_id: int | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` ("*" = any) with this error."""
        with self._lock:
            self._injections.append(
                _Injection(method.lower(), ApiError(error_code, description, parameters), times,
                           chat_id)
            )

    def slow_answer(self, method: str, seconds: float, times: int = 1, *,
                    chat_id: int | None = None) -> None:
        """Carry out the next ``times`` calls of ``method`` at once but answer them only
        ``seconds`` later, as a slow network does: the message is in the chat while
        the client still waits for its id."""
        with self._lock:
            self._slow_answers.append(_SlowAnswer(method.lower(), seconds, times, chat_id))

    def garble_answer(self, method: str, body: bytes = b"<html>502 Bad Gateway</html>", times: int = 1, *,
                      chat_id: int | None = None) -> None:
        """Carry out the next ``times`` calls of ``method`` ("*" = any) but answer them with
        ``body`` and status 200, as a broken proxy or a third-party Bot API server may: the
        message is in the chat, and the client cannot read the answer."""
        with self._lock:
            self._garbles.append(_Garble(method.lower(), body, times, chat_id))

    def _garbled(self, method: str, params: JSON) -> bytes | None:
        with self._lock:
            for garble in self._garbles:
                if garble.remaining > 0 and garble.method in ("*", method.lower()) \
                        and garble.chat_id in (None, params.get("chat_id")):
                    garble.remaining -= 1
                    return garble.body
        return None

    def answers(self) -> list[Answer]:
        """Successful answers that carried a message, with the wall-clock time they were written."""
        with self._lock:
            return list(self._answer_log)

    async def _answer_late(self, method: str, params: JSON) -> None:
        with self._lock:
            slow = next((s for s in self._slow_answers if s.remaining > 0
                         and s.method in ("*", method.lower())
                         and s.chat_id in (None, params.get("chat_id"))), None)
            if slow is not None:
                slow.remaining -= 1
        if slow is not None:
            await asyncio.sleep(slow.seconds)

    def inject_flood(self, method: str = "sendMessage", retry_after: int | float = 1,
                     times: int = 1, *, chat_id: int | None = None) -> None:
        """Shortcut: the next calls answer 429 with this retry_after."""
        self.inject_error(method, 429, f"Too Many Requests: retry after {retry_after}",
                          {"retry_after": retry_after}, times, chat_id=chat_id)

    def reset_flood(self) -> None:
        """Forget the flood windows (not the 429 counts)."""
        with self._lock:
            self._flood_overall.clear()
            self._flood_chats.clear()

    # ------------------------------------------------------------------ inspection

    def messages(self, chat_id: int, *, include_incoming: bool = False) -> list[SentMessage]:
        """Messages currently visible in the chat (after edits/deletions), oldest first.

        Only the bot's own messages unless include_incoming=True.
        """
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return [self._snapshot(m) for m in chat.messages.values()
                    if not m.deleted and (m.from_bot or include_incoming)]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        with self._lock:
            return self._snapshot(self._chats[chat_id].messages[message_id])

    def _snapshot(self, m: _Msg) -> SentMessage:
        return SentMessage(
            m.chat_id, m.message_id, m.date, m.kind, m.text, self._html_of(m), m.parse_mode,
            copy.deepcopy(m.entities), copy.deepcopy(m.reply_markup), m.from_bot,
            m.from_user["id"] if m.from_user else None, m.edit_date is not None, m.reply_to,
            m.thread_id, m.file, self._message_json(m),
        )

    def history(self, chat_id: int | None = None) -> list[Event]:
        """Every send/edit/delete/pin by the bot, in order (all chats if chat_id is None)."""
        with self._lock:
            return [e for e in self._history if chat_id is None or e.chat_id == chat_id]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        with self._lock:
            return list(self._answers)

    @property
    def documents(self) -> list[UploadedFile]:
        with self._lock:
            return [u for u in self._uploads if u.kind == "document"]

    @property
    def photos(self) -> list[UploadedFile]:
        with self._lock:
            return [u for u in self._uploads if u.kind == "photo"]

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def flood_errors(self, chat_id: int | None = None) -> int:
        """How many 429s were answered (to one chat, or in total)."""
        with self._lock:
            if chat_id is None:
                return sum(self._flood_errors.values())
            return self._flood_errors[chat_id]

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by the bot (getUpdates offset)."""
        with self._lock:
            return copy.deepcopy(self._updates)

    @property
    def commands(self) -> list[JSON]:
        """The default-scope command list set with setMyCommands."""
        with self._lock:
            return copy.deepcopy(self._commands.get(self._commands_key({}), []))

    @property
    def webhook(self) -> JSON | None:
        with self._lock:
            return copy.deepcopy(self._webhook)

    def bot_status(self, chat_id: int) -> str:
        with self._lock:
            return self._chats[chat_id].bot_status

    def pinned(self, chat_id: int) -> int | None:
        with self._lock:
            return self._chats[chat_id].pinned

    @property
    def server_errors(self) -> list[str]:
        """Exceptions inside the fake itself (answered as HTTP 500); should stay empty."""
        with self._lock:
            return list(self._server_errors)

    # ------------------------------------------------------------------ waiting

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0,
                 interval: float = 0.01, message: str = "") -> T:
        """Poll ``predicate`` until it returns something truthy; return that.

        Blocks the calling thread: from an async test (where the bot runs on the
        same event loop) use ``await wait_for_async(...)`` instead.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(message or f"condition not met within {timeout} s")
            time.sleep(interval)

    async def wait_for_async(self, predicate: Callable[[], T], timeout: float = 5.0,
                             interval: float = 0.01, message: str = "") -> T:
        """Like wait_for, but yields to the event loop between polls."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(message or f"condition not met within {timeout} s")
            await asyncio.sleep(interval)


def _iter_buttons(markup: JSON | None) -> Iterable[JSON]:
    for row in (markup or {}).get("inline_keyboard", []):
        yield from row
