"""The fake Telegram server, driven by the real python-telegram-bot client over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.warnings import PTBDeprecationWarning

from tests.fakes.telegram_server import (
    NOT_MODIFIED,
    FakeTelegram,
    FloodLimits,
    Window,
    _HtmlError,
    parse_html,
)

GROUP = -1001234567890
USER = 4242


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(token="123:ABC") as server:
        server.add_user(USER, "Sari", "sari_media")
        server.add_chat(GROUP, title="Media team")
        yield server
    assert server.server_errors == []


@pytest.fixture
def timedelta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it PTB warns (PTBDeprecationWarning) as soon as it builds a RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    return Bot(token or fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url)


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.title(), callback_data=d) for d in data]])


# --------------------------------------------------------------------------- basics


@pytest.mark.asyncio
async def test_get_me_and_unknown_token(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123, True, "triage_test_bot")

    # PTB re-words the 401 "Unauthorized" on initialize().
    with pytest.raises(InvalidToken, match="was rejected by the server"):
        async with make_bot(fake, token="999:WRONG"):
            pass


@pytest.mark.asyncio
async def test_send_html_with_keyboard_then_edit(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        sent = await bot.send_message(
            GROUP,
            "<b>Tiket #7</b> dari <i>@jane</i> &amp; <a href='https://ig.me/p/1'>post</a>",
            parse_mode="HTML",
            reply_markup=keyboard("claim", "done"),
        )
        assert sent.text == "Tiket #7 dari @jane & post"
        assert sent.text_html == (
            '<b>Tiket #7</b> dari <i>@jane</i> &amp; <a href="https://ig.me/p/1">post</a>'
        )
        assert sent.reply_markup is not None
        second = await bot.send_message(GROUP, "plain")
        assert second.message_id == sent.message_id + 1

        edited = await bot.edit_message_text(
            "<b>Tiket #7</b> selesai", GROUP, sent.message_id, parse_mode="HTML",
            reply_markup=keyboard("reopen"),
        )
        assert isinstance(edited, Message) and edited.edit_date is not None
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("<b>Tiket #7</b> selesai", GROUP, sent.message_id,
                                        parse_mode="HTML", reply_markup=keyboard("reopen"))
        # Same text without reply_markup is a change: the keyboard goes away.
        await bot.edit_message_text("<b>Tiket #7</b> selesai", GROUP, sent.message_id,
                                    parse_mode="HTML")
        await bot.edit_message_reply_markup(GROUP, sent.message_id, reply_markup=keyboard("x"))
        with pytest.raises(BadRequest, match="(?i)message to edit not found"):
            await bot.edit_message_text("nope", GROUP, 999)
        await bot.delete_message(GROUP, second.message_id)

    [current] = fake.messages(GROUP)
    assert current.text == "Tiket #7 selesai"
    assert current.html == "<b>Tiket #7</b> selesai"
    assert current.callback_data == ["x"] and current.edited
    kinds = [(e.kind, e.method) for e in fake.history(GROUP)]
    assert kinds == [("send", "sendMessage"), ("send", "sendMessage"),
                     ("edit", "editMessageText"), ("edit", "editMessageText"),
                     ("edit", "editMessageReplyMarkup"), ("delete", "deleteMessage")]
    assert fake.history(GROUP)[2].reply_markup == keyboard("reopen").to_dict()
    not_modified = [c for c in fake.calls_to("editMessageText") if c.status == 400]
    assert len(not_modified) == 2
    assert NOT_MODIFIED.startswith("Bad Request: message is not modified: specified new")


@pytest.mark.asyncio
async def test_validation_errors(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        with pytest.raises(BadRequest, match="(?i)can't parse entities: unsupported start tag"):
            await bot.send_message(GROUP, "<b>ok</b><blink>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(GROUP, "<b> </b>", parse_mode="HTML")
        trimmed = await bot.send_message(GROUP, "  <i>hai</i>  ", parse_mode="HTML")
        assert (trimmed.text, trimmed.entities[0].offset) == ("hai", 0)
        # The limit is on the rendered text: markup does not count.
        await bot.send_message(GROUP, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="(?i)message is too long"):
            await bot.send_message(GROUP, "a" * 4097)
        with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
            await bot.send_message(GROUP, "x", reply_markup=keyboard("d" * 65))
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(-100999, "x")
        with pytest.raises(BadRequest, match="(?i)query is too old"):
            await bot.answer_callback_query("12345")
    assert len(fake.messages(GROUP)) == 2


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("Tom & Jerry", 'Unescaped "&" at byte offset 4'),
        ("<a href='x'", "Unclosed start tag"),
    ],
)
def test_parse_html_rejects(source: str, error: str) -> None:
    with pytest.raises(_HtmlError, match=error.replace("(", r"\(")):
        parse_html(source)


def test_parse_html_entities() -> None:
    parsed = parse_html(
        '<b>b</b><tg-spoiler>s</tg-spoiler><span class="tg-spoiler">p</span>'
        '<pre><code class="language-python">x</code></pre><blockquote expandable>q</blockquote>'
        "&lt;&#128512;&gt;<u>u</u>"
    )
    assert parsed.text == "bspxq<😀>u"
    assert [(e["type"], e["offset"], e["length"]) for e in parsed.entities] == [
        ("bold", 0, 1), ("spoiler", 1, 1), ("spoiler", 2, 1), ("pre", 3, 1),
        ("expandable_blockquote", 4, 1), ("underline", 9, 1),  # the emoji is 2 UTF-16 units
    ]
    assert parsed.entities[3]["language"] == "python"
    assert parse_html("Tom & Jerry", strict_ampersand=False).text == "Tom & Jerry"


# --------------------------------------------------------------------------- chat errors


@pytest.mark.asyncio
async def test_migrated_kicked_and_blocked(fake: FakeTelegram) -> None:
    fake.add_chat(-555, type="group", title="Old group")
    fake.add_chat(-777, title="Gone")
    fake.migrate_chat(-555, -1009998887776, by_user_id=USER)
    fake.kick_bot(-777)
    fake.block_bot(USER)
    async with make_bot(fake) as bot:
        with pytest.raises(ChatMigrated) as migrated:
            await bot.send_message(-555, "x")
        assert migrated.value.new_chat_id == -1009998887776
        await bot.send_message(-1009998887776, "moved")
        with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
            await bot.send_message(-777, "x")
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(USER, "x")
    updates = fake.pending_updates
    assert updates[0]["message"]["migrate_to_chat_id"] == -1009998887776
    assert updates[1]["message"]["migrate_from_chat_id"] == -555
    assert updates[2]["my_chat_member"]["new_chat_member"]["status"] == "kicked"


@pytest.mark.asyncio
async def test_chat_member_chat_pin_commands_and_leave(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        me = await bot.get_chat_member(GROUP, 123)
        assert me.status == "administrator"
        fake.set_member(GROUP, USER, "creator")
        assert (await bot.get_chat_member(GROUP, USER)).status == "creator"
        chat = await bot.get_chat(GROUP)
        assert (chat.title, chat.type) == ("Media team", "supergroup")
        sent = await bot.send_message(GROUP, "pin me")
        assert await bot.pin_chat_message(GROUP, sent.message_id)
        assert fake.pinned(GROUP) == sent.message_id
        assert await bot.set_my_commands([("start", "Mulai"), ("report", "Laporan")])
        assert [c.command for c in await bot.get_my_commands()] == ["start", "report"]
        assert await bot.leave_chat(GROUP)
        with pytest.raises(Forbidden, match="not a member"):
            await bot.send_message(GROUP, "x")
    assert fake.commands[1] == {"command": "report", "description": "Laporan"}


# --------------------------------------------------------------------------- flood control


@pytest.mark.asyncio
@pytest.mark.usefixtures("timedelta_env")
async def test_group_flood_limit_raises_retry_after(fake: FakeTelegram) -> None:
    fake.flood = FloodLimits(group=Window(3, 60.0))
    async with make_bot(fake) as bot:
        for n in range(3):
            await bot.send_message(GROUP, f"m{n}")
        with pytest.raises(RetryAfter) as exc_info:
            await bot.send_message(GROUP, "one too many")
    retry_after = exc_info.value.retry_after
    assert isinstance(retry_after, dtm.timedelta)
    assert dtm.timedelta(seconds=55) <= retry_after <= dtm.timedelta(seconds=60)
    assert fake.flood_errors(GROUP) == 1
    fake.advance(60)  # the window has passed on the fake's clock
    async with make_bot(fake) as bot:
        await bot.send_message(GROUP, "again")


@pytest.mark.asyncio
@pytest.mark.usefixtures("timedelta_env")
async def test_private_burst_and_time_scale(fake: FakeTelegram) -> None:
    # 10x: the private window of 3 messages in 3 s lasts 0.3 s of real time.
    fast = FakeTelegram(time_scale=10.0, fractional_retry_after=True)
    with fast:
        fast.add_chat(USER)
        async with make_bot(fast) as bot:
            for n in range(3):  # a small burst is fine
                await bot.send_message(USER, f"m{n}")
            with pytest.raises(RetryAfter) as exc_info:
                await bot.send_message(USER, "too fast")
            wait = exc_info.value.retry_after
            assert isinstance(wait, dtm.timedelta)
            assert dtm.timedelta(0) < wait <= dtm.timedelta(seconds=0.3)
            await asyncio.sleep(wait.total_seconds())
            await bot.send_message(USER, "after waiting")
        assert fast.flood_errors(USER) == 1
        assert fast.flood_errors() == 1


@pytest.mark.asyncio
async def test_retry_after_warns_without_ptb_timedelta(
    fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PTB 22 trap: with filterwarnings=error a 429 surfaces as a warning, not RetryAfter."""
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    fake.inject_flood("sendMessage", retry_after=7)
    async with make_bot(fake) as bot:
        with pytest.warns(PTBDeprecationWarning, match="retry_after"), \
                pytest.raises(RetryAfter):
            await bot.send_message(GROUP, "x")
    assert fake.flood_errors(GROUP) == 1


@pytest.mark.asyncio
async def test_injected_errors(fake: FakeTelegram) -> None:
    fake.inject_error("sendMessage", 400, "Bad Request: chat not found", times=2)
    async with make_bot(fake) as bot:
        for _ in range(2):
            with pytest.raises(BadRequest, match="Chat not found"):
                await bot.send_message(GROUP, "x")
        await bot.send_message(GROUP, "third time lucky")
    assert [c.status for c in fake.calls_to("sendMessage")] == [400, 400, 200]


# --------------------------------------------------------------------------- files


@pytest.mark.asyncio
async def test_document_and_photo_upload(fake: FakeTelegram) -> None:
    content = "nama,kanal\nSari,ig\n".encode()
    async with make_bot(fake) as bot:
        message = await bot.send_document(GROUP, content, filename="laporan.csv",
                                          caption="<b>Laporan</b> mingguan", parse_mode="HTML")
        assert message.document is not None
        assert (message.document.file_name, message.caption) == ("laporan.csv", "Laporan mingguan")
        downloaded = await (await bot.get_file(message.document.file_id)).download_as_bytearray()
        assert bytes(downloaded) == content
        again = await bot.send_document(GROUP, message.document.file_id)  # re-send by file_id
        photo = await bot.send_photo(GROUP, b"\x89PNG fake", caption="chart")
        assert photo.photo and photo.photo[-1].file_size == 9
    [document, resent] = fake.documents
    assert (document.filename, document.content, document.caption) == (
        "laporan.csv", content, "Laporan mingguan")
    assert resent.message_id == again.message_id and resent.content == content
    assert fake.photos[0].content == b"\x89PNG fake"
    assert fake.calls_to("sendDocument")[0].files == {"document": ("laporan.csv", len(content))}


def test_an_upload_trickled_in_small_writes_arrives_whole(fake: FakeTelegram) -> None:
    # Real clients and proxies split uploads anywhere; a PDF holds CRLFs and dashes of its own.
    content = b"%PDF-1.4\r\n--not-the-boundary\r\n\r\n" + bytes(range(256)) * 200 + b"\r\n--"
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n{GROUP}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="laporan.pdf"\r\n'
        f"Content-Type: application/pdf\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    head = (
        f"POST /bot{fake.token}/sendDocument HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", fake.port or 0)) as conn:
        conn.sendall(head)
        for start in range(0, len(body), 9000):  # a few bytes alone, then a burst larger than a read
            for piece in (body[start:start + 3], body[start + 3:start + 9000]):
                conn.sendall(piece)
                time.sleep(0.01)
        answer = b"".join(iter(lambda: conn.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    [document] = fake.documents
    assert (document.filename, document.content) == ("laporan.pdf", content)


# --------------------------------------------------------------------------- updates


@pytest.mark.asyncio
async def test_get_updates_long_poll_offset_and_conflicts(fake: FakeTelegram) -> None:
    loop = asyncio.get_running_loop()
    async with make_bot(fake) as bot:
        loop.call_later(0.2, fake.push_message, GROUP, USER, "/status@triage_test_bot now")
        started = loop.time()
        [update] = await bot.get_updates(timeout=5)
        assert loop.time() - started < 2
        assert update.message is not None
        assert update.message.parse_entities(["bot_command"]) == {
            update.message.entities[0]: "/status@triage_test_bot"
        }
        assert fake.pending_updates  # not confirmed yet
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
        assert fake.pending_updates == []

        # A second poller terminates the first one.
        first = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient() as client:
            raw = await client.post(f"{fake.base_url}{fake.token}/getUpdates",
                                    json={"timeout": 0})
            member = await client.get(f"{fake.base_url}{fake.token}/getChatMember",
                                      params={"chat_id": GROUP, "user_id": USER})
        assert raw.json() == {"ok": True, "result": []}
        assert member.json()["result"]["status"] == "member"
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first

        assert await bot.set_webhook("https://example.org/hook", secret_token="s3cret")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        assert await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == ()


@pytest.mark.asyncio
async def test_application_polling_command_and_button(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await update.effective_chat.send_message(
            "<b>Tiket #1</b> menunggu", parse_mode="HTML", reply_markup=keyboard("done:1"),
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data == "done:1"
        await query.answer("Ditandai selesai")
        await query.edit_message_text(f"<b>Tiket #1</b> selesai oleh {query.from_user.first_name}",
                                      parse_mode="HTML")

    app = (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5)
        fake.push_message(GROUP, USER, "/start")
        [ticket] = await fake.wait_for_async(lambda: fake.messages(GROUP))
        query_id = fake.press_button(GROUP, ticket.message_id, USER, "done:1")
        [answer] = await fake.wait_for_async(lambda: fake.callback_answers)
        await fake.wait_for_async(lambda: fake.messages(GROUP)[0].edited)
        await app.updater.stop()
        await app.stop()

    assert (answer.callback_query_id, answer.text, answer.user_id) == (
        query_id, "Ditandai selesai", USER)
    [final] = fake.messages(GROUP)
    assert final.html == "<b>Tiket #1</b> selesai oleh Sari"
    assert final.reply_markup is None
    assert fake.pending_updates == []  # the updater confirmed everything on stop
    methods = [c.method for c in fake.calls]
    assert methods[:2] == ["getMe", "deleteWebhook"]
    assert methods[-1] == "getUpdates"
