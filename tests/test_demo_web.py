"""The newcomer demo: its day of Instagram traffic, and the live page of Telegram chats.

The browser test drives a real headless Chromium over the DevTools protocol: the
page is opened once, messages are sent to the fake Telegram server with
python-telegram-bot, and the same page (never reloaded) must show them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardMarkup

from bot import telegram_ui as ui
from bot.demo_web import demo_web_app, sanitize_telegram_html, serve_demo_web, served_port
from bot.store import Ticket
from bot.triage import ACKNOWLEDGED, OPEN
from tests.fakes.telegram_server import FakeTelegram

DAY_FILE = Path(__file__).resolve().parents[1] / "bot" / "demo" / "day.jsonl"
MEDIA_CHAT, PUSDATIN_CHAT = -1001000000001, -1001000000105
TITLES = {MEDIA_CHAT: "Tim Media", PUSDATIN_CHAT: "Pusdatin — Pusat Data dan Informasi"}
UTC = timezone.utc
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


# --------------------------------------------------------------------------- the day file


def test_day_file_is_well_formed() -> None:
    lines = DAY_FILE.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    posts = [r for r in records if "text" not in r]
    messages = [r for r in records if "text" in r]
    assert records[: len(posts)] == posts, "posts come first"
    assert 4 <= len(posts) <= 6 and 80 <= len(messages) <= 110
    post_keys = {p["post"]: p["account"] for p in posts}
    for post in posts:
        assert set(post) == {"post", "account", "caption", "minute_posted"} and post["caption"]
    assert {p["account"] for p in posts} == {"kemensos", "kemendag"}
    minutes = [m["minute"] for m in messages]
    assert minutes == sorted(minutes) and 0 <= minutes[0] and minutes[-1] <= 600
    for number, message in enumerate(messages):
        assert message["account"] in ("kemensos", "kemendag") and message["text"].strip()
        assert message["author"] and not message["author"].startswith("@")
        if message["channel"] == "dm":
            assert "post" not in message and "parent" not in message
        else:
            assert message["channel"] == "comment" and post_keys[message["post"]] == message["account"]
        if "parent" in message:
            parent = messages[message["parent"]]
            assert message["parent"] < number and parent["channel"] == "comment"
            assert parent["post"] == message["post"] and parent["minute"] <= message["minute"]
    assert {m["channel"] for m in messages} == {"comment", "dm"}
    assert sum("parent" in m for m in messages) >= 3
    assert any("<b>tolong</b> & cepat" in m["text"] for m in messages)


# --------------------------------------------------------------------------- sanitising


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("<b>Tiket #1</b> · <i>baru</i>", "<b>Tiket #1</b> · <i>baru</i>"),
        ("&lt;b&gt;tolong&lt;/b&gt; &amp; cepat", "&lt;b&gt;tolong&lt;/b&gt; &amp; cepat"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)"&gt;'),
        ('<b onclick="x()">tebal</b>', "<b>tebal</b>"),
        ('<a href="javascript:alert(1)">klik</a>', "<a>klik</a>"),
        ('<a href="tg://user?id=7201">Budi</a>', "<a>Budi</a>"),
        ('<a href="https://instagram.com/p/1?a=1&amp;b=2">Buka</a>',
         '<a href="https://instagram.com/p/1?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">Buka</a>'),
        ("<blockquote expandable>panjang</blockquote>", "<blockquote>panjang</blockquote>"),
        ("<code>3374********0002</code>", "<code>3374********0002</code>"),
        ("<u>garis</u> <s>coret</s>", "&lt;u&gt;garis&lt;/u&gt; &lt;s&gt;coret&lt;/s&gt;"),
        ("<b>tak ditutup", "<b>tak ditutup</b>"),
        ("</i>sisa", "&lt;/i&gt;sisa"),
        ("<!-- komentar -->", "&lt;!-- komentar --&gt;"),
    ],
)
def test_sanitize_keeps_only_telegrams_safe_tags(source: str, expected: str) -> None:
    assert sanitize_telegram_html(source) == expected


# --------------------------------------------------------------------------- helpers


def make_ticket(ticket_id: int, text: str, author: str, unit: str, **changes: Any) -> Ticket:
    ticket = Ticket(
        id=ticket_id, message_id=f"m-{ticket_id}", account="kemensos", channel="comment", unit=unit,
        status=OPEN, labels=("complaint", "question"), scores={"complaint": 0.91, "question": 0.84},
        unit_source="keyword", lang="id", text=text, author_username=author,
        permalink=f"https://www.instagram.com/p/DemoPKH4/c/1785000000000{ticket_id:04d}/",
        media_id="17900000000000001", conversation_id=None,
        received_at=datetime(2025, 11, 24, 0, 14, tzinfo=UTC), created_at=datetime(2025, 11, 24, 0, 15, tzinfo=UTC),
        deadline=datetime(2025, 11, 27, 0, 14, tzinfo=UTC), acknowledged_by=None, acknowledged_at=None,
        resolved_by=None, resolved_at=None, resolution_note=None,
    )
    return replace(ticket, **changes)


def markup(rendered: ui.Rendered) -> InlineKeyboardMarkup | None:
    data = rendered.reply_markup()
    return InlineKeyboardMarkup.de_json(data, None) if data else None


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is needed for the demo page test: install the Debian package "
                "`chromium` (apt-get install -y chromium)")


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the decoded pixel data) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            reply = await self.ws.receive_json()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 8.0) -> Any:
        """Poll a JS expression until it is truthy; fail with its last value."""
        deadline = asyncio.get_running_loop().time() + timeout
        value = None
        while asyncio.get_running_loop().time() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        text = await self.evaluate("document.body ? document.body.innerText : ''")
        raise AssertionError(f"timed out waiting for {expression!r}; page text:\n{text}")


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram("123456:DEMO-TOKEN") as server:
        for chat_id, title in TITLES.items():
            server.add_chat(chat_id, title=title)
        yield server
    assert server.server_errors == []


@pytest.fixture
async def bot(fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as client:
        yield client


@pytest.fixture
async def page_url(fake: FakeTelegram) -> AsyncIterator[str]:
    runner = await serve_demo_web(demo_web_app(fake, TITLES), port=0)
    try:
        yield f"http://127.0.0.1:{served_port(runner)}/"
    finally:
        await runner.cleanup()


@pytest.fixture
async def devtools(tmp_path: Path) -> AsyncIterator[DevTools]:
    profile = tmp_path / "chromium-profile"
    process = await asyncio.create_subprocess_exec(
        find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
        "--hide-scrollbars", "--window-size=1280,900", "--remote-debugging-port=0",
        f"--user-data-dir={profile}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(100):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert process.returncode is None, "Chromium exited at start-up"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield DevTools(ws)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


# --------------------------------------------------------------------------- API and page


async def test_api_lists_chats_in_order_with_messages(fake: FakeTelegram, bot: Bot, page_url: str) -> None:
    ticket = make_ticket(7, "NIK saya 3374015203870002 tidak ditemukan di Cek Bansos", "nur_aini.s", "pusdatin")
    rendered = ui.ticket_message(ticket, account_name="Kementerian Sosial", unit_name="Pusdatin", tz="Asia/Jakarta")
    sent = await bot.send_message(PUSDATIN_CHAT, rendered.text, parse_mode="HTML", reply_markup=markup(rendered))
    await bot.edit_message_text("<b>Tiket #7</b> diperbarui", chat_id=PUSDATIN_CHAT, message_id=sent.message_id,
                                parse_mode="HTML")
    async with aiohttp.ClientSession() as session:
        async with session.get(page_url) as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        async with session.get(page_url + "api/chats") as response:
            body = await response.json()
    assert "Demo bot triase Instagram — pesan yang dilihat tiap grup Telegram" in page
    assert [(c["id"], c["title"]) for c in body["chats"]] == list(TITLES.items())
    media, unit = body["chats"]
    assert media["messages"] == []
    [message] = unit["messages"]
    assert message["id"] == sent.message_id and message["edited"] is True
    assert message["html"] == "<b>Tiket #7</b> diperbarui" and message["buttons"] == []
    assert isinstance(message["date"], int) and message["kind"] == "text"


async def test_page_carries_the_chats_and_the_demo_clock_before_any_poll(fake: FakeTelegram, bot: Bot) -> None:
    """The page shows the chats at once (not only "Menghubungkan…" until its first poll), and the
    demo's time, not the machine's: a message is dated when the demo's clock first saw it."""
    story = {"now": datetime(2026, 11, 23, 10, 5, tzinfo=UTC)}  # Monday 17.05 WIB
    runner = await serve_demo_web(demo_web_app(fake, TITLES, clock=lambda: story["now"]), port=0)
    url = f"http://127.0.0.1:{served_port(runner)}/"
    try:
        await bot.send_message(MEDIA_CHAT, "<b>Tiket #57</b> masuk", parse_mode="HTML")
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                page = await response.text()
            story["now"] = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)  # Thursday 16.30 WIB
            async with session.get(url + "api/chats") as response:
                body = await response.json()
    finally:
        await runner.cleanup()
    assert "/*INITIAL_SNAPSHOT*/" not in page and "Tiket #57" in page
    assert "<b>Tiket #57<\\/b>" in page, "no '</' of a message inside the page's script"
    assert body["now"] == int(datetime(2026, 11, 26, 9, 30, tzinfo=UTC).timestamp())
    [message] = body["chats"][0]["messages"]
    assert message["date"] == int(datetime(2026, 11, 23, 10, 5, tzinfo=UTC).timestamp()), "dated when first seen"


def test_button_labels_wrap_instead_of_being_cut() -> None:
    page = (Path(__file__).resolve().parents[1] / "bot" / "demo" / "page.html").read_text(encoding="utf-8")
    row_css = page[page.index(".row {"):page.index("footer {")]
    assert "text-overflow: ellipsis" not in row_css and "flex-wrap: wrap" in row_css


@pytest.mark.slow  # starts a browser
async def test_page_shows_messages_as_they_arrive(
    fake: FakeTelegram, bot: Bot, page_url: str, devtools: DevTools, tmp_path: Path
) -> None:
    tz = "Asia/Jakarta"
    first = make_ticket(41, "Saya cek di Cek Bansos NIK saya tidak ditemukan, padahal tahun lalu masih dapat PKH. "
                            "NIK 3374015203870002, mohon dibantu min", "nur_aini.s", "pusdatin")
    ticket_view = ui.ticket_message(first, account_name="Kementerian Sosial",
                                    unit_name="Pusat Data dan Informasi Kesejahteraan Sosial", tz=tz)
    ticket_msg = await bot.send_message(PUSDATIN_CHAT, ticket_view.text, parse_mode="HTML",
                                        reply_markup=markup(ticket_view))
    mirror = ui.mirror_message(first, account_name="Kementerian Sosial", unit_name="Pusdatin", tz=tz)
    await bot.send_message(MEDIA_CHAT, mirror.text, parse_mode="HTML", reply_markup=markup(mirror))

    await devtools.send("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1,
                        mobile=False)
    await devtools.send("Page.navigate", url=page_url)
    await devtools.wait_for("document.readyState === 'complete'")
    # shown from the page itself, before any poll: no "Menghubungkan…" while the first fetch runs
    assert await devtools.evaluate("document.querySelectorAll('.msg').length") == 2
    assert "waktu demo" in await devtools.evaluate("document.getElementById('status').textContent")
    assert await devtools.evaluate(
        "[...document.querySelectorAll('.row button')].every(b => b.scrollWidth <= b.clientWidth)"
    ), "a button label is cut"
    text = await devtools.evaluate("document.body.innerText")
    assert "Tim Media" in text and "Pusdatin — Pusat Data dan Informasi" in text
    assert "Tiket #41" in text and "3374********0002" in text and "3374015203870002" not in text
    assert "Terima" in text and "(diedit)" not in text
    assert await devtools.evaluate("[...document.querySelectorAll('.row button')].every(b => b.disabled)")
    await devtools.evaluate("window.__sameDocument = true")

    # A new ticket arrives at the media team, and the unit's ticket is acknowledged (edited).
    second = make_ticket(42, "<b>tolong</b> & cepat min, sudah 4 bulan BPNT saya tidak masuk ke KKS >:(",
                         "siti.maesaroh", "pfm", labels=("complaint", "negative"))
    new_mirror = ui.mirror_message(second, account_name="Kementerian Sosial", unit_name="PFM", tz=tz)
    await bot.send_message(MEDIA_CHAT, new_mirror.text, parse_mode="HTML", reply_markup=markup(new_mirror))
    acked = replace(first, status=ACKNOWLEDGED, acknowledged_by=7501,
                    acknowledged_at=datetime(2025, 11, 24, 1, 2, tzinfo=UTC))
    acked_view = ui.ticket_message(acked, account_name="Kementerian Sosial",
                                   unit_name="Pusat Data dan Informasi Kesejahteraan Sosial", tz=tz,
                                   people={7501: "Rina (Pusdatin)"})
    await bot.edit_message_text(acked_view.text, chat_id=PUSDATIN_CHAT, message_id=ticket_msg.message_id,
                                parse_mode="HTML", reply_markup=markup(acked_view))

    await devtools.wait_for("document.body.innerText.includes('<b>tolong</b> & cepat')")
    await devtools.wait_for("document.body.innerText.includes('(diedit)')")
    assert await devtools.evaluate("window.__sameDocument === true"), "the page reloaded instead of fetching"
    assert not await devtools.evaluate(
        "[...document.querySelectorAll('.text b')].some(b => b.textContent.includes('tolong'))"
    ), "user text must be shown as text, not markup"
    media_texts = await devtools.evaluate(
        f"[...document.querySelectorAll('[data-chat-id=\"{MEDIA_CHAT}\"] .msg')].map(m => m.innerText)"
    )
    assert len(media_texts) == 2 and "#42" in media_texts[-1], "newest message at the bottom"
    assert "Rina (Pusdatin)" in await devtools.evaluate("document.body.innerText")

    await asyncio.sleep(2.6)  # let the highlight of new messages fade before the screenshot
    shot = base64.b64decode((await devtools.send("Page.captureScreenshot", format="png"))["data"])
    (tmp_path / "demo-page.png").write_bytes(shot)
    width, height, distinct = png_facts(shot)
    assert (width, height) == (1280, 800) and len(shot) > 20_000 and distinct > 50
