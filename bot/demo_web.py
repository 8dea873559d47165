"""A local web page that shows, live, what each Telegram chat of the demo sees.

For newcomers: run the demo against the fake Telegram server and open the page
in a browser; one card per chat (media team, supervisor, each unit's group)
shows the bot's messages as they arrive, edited messages marked "(diedit)".

    app = demo_web_app(fake_telegram, {-1001000000001: "Tim Media", ...})
    runner = await serve_demo_web(app)          # http://127.0.0.1:8765/
    ...
    await runner.cleanup()

Routes:

    GET /            the page (bot/demo/page.html) with the chats as they are now already in it,
                     so it shows them at once; its script then polls /api/chats every second
    GET /api/chats   {"now": 1763892300, "chats": [{"id": -100..., "title": "Tim Media", "messages": [
                         {"id": 7, "html": "<b>Tiket #3</b> ...", "buttons": [["Terima", "Alihkan"]],
                          "edited": false, "date": 1767225600, "kind": "text", "file_name": null}]}]}

Chats come in the order of ``chat_titles``; messages oldest first. ``html`` is
the bot's HTML passed through `sanitize_telegram_html`: only b, i, a (http/https
links only), blockquote and code survive, everything else is shown as text.
``buttons`` are the inline keyboard's rows of button labels. ``date`` is a Unix
time in seconds. With a ``clock`` (the demo's simulated clock) ``now`` is the demo's
time and each message's ``date`` is the demo time at which the page's server first saw
it, so the page tells the story's Monday 17.05, not the wall clock of the machine;
without one both are the real time.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

__all__ = [
    "ChatSource",
    "chats_snapshot",
    "demo_web_app",
    "sanitize_telegram_html",
    "serve_demo_web",
    "served_port",
]

PAGE_FILE = Path(__file__).with_name("demo") / "page.html"
ALLOWED_TAGS = frozenset({"b", "i", "a", "blockquote", "code"})
_LINK_SCHEMES = ("http://", "https://")


class ChatMessage(Protocol):
    """What the page needs of a message (tests.fakes.telegram_server.SentMessage has it)."""

    @property
    def message_id(self) -> int: ...
    @property
    def date(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def html(self) -> str | None: ...
    @property
    def edited(self) -> bool: ...
    @property
    def buttons(self) -> list[list[dict[str, Any]]]: ...
    @property
    def file(self) -> Any: ...


class ChatSource(Protocol):
    """The fake Telegram server, as far as the page is concerned."""

    def messages(self, chat_id: int) -> Sequence[ChatMessage]: ...


_SOURCE_KEY: web.AppKey[ChatSource] = web.AppKey("demo_source")
_TITLES_KEY: web.AppKey[Mapping[int, str]] = web.AppKey("demo_titles")
_PAGE_KEY: web.AppKey[str] = web.AppKey("demo_page")
_CLOCK_KEY: web.AppKey["DemoClock"] = web.AppKey("demo_clock")
INITIAL_MARK = "/*INITIAL_SNAPSHOT*/null"


# -- sanitising ------------------------------------------------------------------------


class _Sanitizer(HTMLParser):
    """Rebuilds HTML keeping only ALLOWED_TAGS (without attributes, except a safe href);
    any other markup is escaped and shown as text. Tags are balanced on output."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self._as_text(self.get_starttag_text() or "")
            return
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "")
            if href.lower().startswith(_LINK_SCHEMES):
                self.out.append(f'<a href="{html.escape(href, quote=True)}" target="_blank" '
                                'rel="noopener noreferrer">')
            else:  # tg://user?id=... mentions and anything else: no link
                self.out.append("<a>")
        else:
            self.out.append(f"<{tag}>")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._as_text(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS or tag not in self.open:
            self._as_text(f"</{tag}>")
            return
        while self.open:
            name = self.open.pop()
            self.out.append(f"</{name}>")
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        self._as_text(data)

    def handle_comment(self, data: str) -> None:
        self._as_text(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._as_text(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._as_text(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self._as_text(f"<![{data}]>")

    def _as_text(self, text: str) -> None:
        self.out.append(html.escape(text, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{name}>" for name in reversed(self.open))


def sanitize_telegram_html(source: str) -> str:
    """Telegram-style HTML -> HTML safe to put in a page (see ALLOWED_TAGS)."""
    parser = _Sanitizer()
    parser.feed(source)
    return parser.result()


# -- the app -----------------------------------------------------------------------------


class DemoClock:
    """The time the page shows: the demo's clock, and when each message was first seen by it."""

    def __init__(self, clock: Callable[[], datetime] | None) -> None:
        self.clock = clock
        self.first_seen: dict[tuple[int, int], int] = {}

    def now(self) -> int:
        return int(self.clock().timestamp()) if self.clock else int(time.time())

    def date_of(self, chat_id: int, message: ChatMessage) -> int:
        if self.clock is None:
            return int(message.date)
        return self.first_seen.setdefault((chat_id, message.message_id), self.now())


def _message_json(message: ChatMessage, date: int | None = None) -> dict[str, Any]:
    file = message.file
    return {
        "id": message.message_id,
        # Telegram draws a quote as a block: the line break after it would show as a blank line.
        "html": sanitize_telegram_html(message.html or "").replace("</blockquote>\n", "</blockquote>"),
        "buttons": [[str(button.get("text", "")) for button in row] for row in message.buttons],
        "edited": bool(message.edited),
        "date": message.date if date is None else date,
        "kind": message.kind,
        "file_name": getattr(file, "filename", None) if file is not None else None,
    }


def chats_snapshot(source: ChatSource, chat_titles: Mapping[int, str],
                   clock: DemoClock | None = None) -> dict[str, Any]:
    """The body of GET /api/chats."""
    clock = clock or DemoClock(None)
    return {
        "now": clock.now(),
        "chats": [
            {
                "id": chat_id,
                "title": title,
                "messages": [_message_json(m, clock.date_of(chat_id, m))
                             for m in source.messages(chat_id) if m.kind != "service"],
            }
            for chat_id, title in chat_titles.items()
        ],
    }


def _snapshot(app: web.Application) -> dict[str, Any]:
    return chats_snapshot(app[_SOURCE_KEY], app[_TITLES_KEY], app[_CLOCK_KEY])


async def _page(request: web.Request) -> web.Response:
    # The chats as they are now go in the page itself, so it shows them before its first poll;
    # "</" is escaped so that no message text can end the script element.
    initial = json.dumps(_snapshot(request.app), ensure_ascii=False).replace("</", "<\\/")
    text = request.app[_PAGE_KEY].replace(INITIAL_MARK, initial, 1)
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


async def _chats(request: web.Request) -> web.Response:
    return web.json_response(_snapshot(request.app), headers={"Cache-Control": "no-store"})


def demo_web_app(fake_telegram: ChatSource, chat_titles: Mapping[int, str],
                 clock: Callable[[], datetime] | None = None) -> web.Application:
    """The page and its JSON API over a fake Telegram server; chat_titles (Indonesian)
    chooses the chats shown and their order; clock is the demo's clock (default: real time)."""
    app = web.Application()
    app[_SOURCE_KEY] = fake_telegram
    app[_TITLES_KEY] = dict(chat_titles)
    app[_CLOCK_KEY] = DemoClock(clock)
    app[_PAGE_KEY] = PAGE_FILE.read_text(encoding="utf-8")
    app.router.add_get("/", _page)
    app.router.add_get("/api/chats", _chats)
    return app


async def serve_demo_web(app: web.Application, host: str = "127.0.0.1", port: int = 8765) -> web.AppRunner:
    """Start serving app; port 0 picks a free port. Call ``await runner.cleanup()`` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def served_port(runner: web.AppRunner) -> int:
    """The port a runner started by serve_demo_web listens on (useful with port=0)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the demo web app is not serving")
