"""End to end: Instagram (fake) -> poll -> classify -> Telegram (fake) -> buttons.

The real bot runs against both fake servers over HTTP; the test acts as the
citizens (comments, DMs) and as the officers (commands, button presses).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import pytest

from bot.config import Settings
from bot.delivery import Limits
from bot.runner import Runtime, build_runtime, serve
from classifiers.pipeline import load_classifier
from tests.conftest import GROUP_WINDOW
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.telegram_server import FakeTelegram

LINJAMSOS, PUSDATIN, MEDIA, PDN = -1001000000101, -1001000000105, -1001000000001, -1001000000201
OFFICER_LINJAMSOS, OFFICER_PUSDATIN, OFFICER_PDN, MEDIA_MEMBER, STRANGER = 7101, 7501, 8101, 5001, 9999
LIMITS = Limits(group_per_period=GROUP_WINDOW.count, group_period=GROUP_WINDOW.period)
NIK = "3276012345670001"


@pytest.fixture(scope="module")
def classifier():  # type: ignore[no-untyped-def]
    from bot.config import load_routing
    from tests.conftest import ROUTING_FILE

    return load_classifier(load_routing(ROUTING_FILE).account_rules(), backend="ngram")


@pytest.fixture
async def bot(settings: Settings, classifier) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    runtime = build_runtime(settings, classifier=classifier, limits=LIMITS)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop, poll=False))
    await asyncio.sleep(0.3)  # the updater's first getUpdates
    yield runtime
    stop.set()
    await asyncio.wait_for(task, 10)


def seed(fake: FakeInstagram) -> dict[str, str]:
    now = datetime.now(timezone.utc)
    post = fake.add_media("17841400000000001", caption="Penyaluran PKH tahap 4", timestamp=now - timedelta(hours=3))
    ids = {
        "pkh": fake.add_comment(post, f"min PKH saya belum cair sudah 3 bulan, NIK {NIK} tolong dicek dong",
                                "ibu.sari", timestamp=now - timedelta(hours=2)),
        "html": fake.add_comment(post, "min <b>PKH</b> tahap 4 saya kapan cair ya? sudah tunggu lama & belum ada kabar <script>alert(1)</script>",
                                 "pak.budi", timestamp=now - timedelta(hours=1)),
        "spam": fake.add_comment(post, "slot gacor maxwin hari ini, depo 10k langsung wd, link di bio 🔥",
                                 "gacor.id", timestamp=now - timedelta(minutes=30)),
    }
    conv, dm = fake.add_dm("warga.kita", "Harga minyak goreng di pasar kami Rp22.000, di atas HET. Mohon ditindak.",
                           account="17841400000000002", timestamp=now - timedelta(minutes=20))
    ids["dm"] = dm
    return ids


def ticket_message(fake: FakeTelegram, chat: int, ticket_id: int):  # type: ignore[no-untyped-def]
    for message in fake.messages(chat):
        if message.text and f"#{ticket_id}" in message.text.split("\n")[0]:
            return message
    return None


async def ticket_in(fake: FakeTelegram, chat: int, ticket_id: int, contains: str = ""):  # type: ignore[no-untyped-def]
    def found():  # type: ignore[no-untyped-def]
        message = ticket_message(fake, chat, ticket_id)
        return message if message and contains in (message.text or "") else None

    return await fake.wait_for_async(found, timeout=10, message=f"ticket #{ticket_id} ({contains!r}) not in chat {chat}")


async def press(fake: FakeTelegram, chat: int, message_id: int, user: int, data: str, check: bool = True) -> str:
    query_id = fake.press_button(chat, message_id, user, data, check=check)
    answers = await fake.wait_for_async(
        lambda: [a for a in fake.callback_answers if a.callback_query_id == query_id], timeout=10,
        message=f"button {data} was not answered")
    return str(answers[0].text or "")


async def polled(bot: Runtime, fake_instagram: FakeInstagram) -> dict[str, int]:
    ids = seed(fake_instagram)
    await bot.poll_once()
    by_message = {t.message_id: t.id for t in bot.store.tickets()}
    return {name: by_message[mid] for name, mid in ids.items() if mid in by_message}


async def test_tickets_reach_their_unit_masked_and_the_media_team_gets_a_mirror(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tickets = await polled(bot, fake_instagram)
    pkh = await ticket_in(fake_telegram, LINJAMSOS, tickets["pkh"])
    assert "3276********0001" in pkh.text and NIK not in pkh.text
    assert "batas" in pkh.text.lower() and "WIB" in pkh.text
    assert any(d.endswith(":ack") for d in pkh.callback_data)
    await ticket_in(fake_telegram, MEDIA, tickets["pkh"])
    dm = await ticket_in(fake_telegram, PDN, tickets["dm"])
    assert "DM" in dm.text
    spam = bot.store.ticket(tickets["spam"])
    assert spam is not None and spam.status == "spam" and spam.unit is None
    assert all(f"#{tickets['spam']}" not in (m.text or "") for chat in (LINJAMSOS, MEDIA)
               for m in fake_telegram.messages(chat))
    html_ticket = await ticket_in(fake_telegram, LINJAMSOS, tickets["html"])
    assert "<script>alert(1)</script>" in html_ticket.text  # shown as text, not parsed
    assert fake_telegram.server_errors == []


async def test_acknowledge_reassign_resolve_with_buttons(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    toast = await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:ack")
    assert "terima" in toast.lower()
    await ticket_in(fake_telegram, LINJAMSOS, tid, "Diterima oleh Petugas7101")
    mirror = await ticket_in(fake_telegram, MEDIA, tid, "Petugas7101")
    assert mirror.edited

    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:move")
    picker = fake_telegram.message(LINJAMSOS, message.message_id)
    assert f"t:{tid}:move:pusdatin" in picker.callback_data
    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:move:pusdatin")
    moved = await ticket_in(fake_telegram, PUSDATIN, tid)
    ticket = bot.store.ticket(tid)
    assert ticket is not None and ticket.unit == "pusdatin" and ticket.status == "open"

    await press(fake_telegram, PUSDATIN, moved.message_id, OFFICER_PUSDATIN, f"t:{tid}:done")
    await fake_telegram.wait_for_async(lambda: bot.store.ticket(tid).status == "resolved")  # type: ignore[union-attr]
    kinds = [e["kind"] for e in bot.store.ticket_events(tid)]
    assert kinds[:4] == ["created", "acknowledged", "moved", "resolved"]
    assert [e["actor"] for e in bot.store.ticket_events(tid)][1:4] == ["7101", "7101", "7501"]


async def test_refusals_for_wrong_user_wrong_unit_unknown_chat_and_forged_buttons(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    for user in (OFFICER_PDN, STRANGER):  # another unit's officer, and someone unknown
        toast = await press(fake_telegram, LINJAMSOS, message.message_id, user, f"t:{tid}:done")
        assert toast.startswith("Maaf")
    toast = await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:fix")
    assert "tim media" in toast
    # a forged button: a ticket of another unit, and garbage
    other = (bot.store.tickets(unit="pdn") or [None])[0]
    assert other is not None
    toast = await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{other.id}:done", check=False)
    assert "tidak ditangani di grup ini" in toast
    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, "t:1:drop_table", check=False)
    assert bot.store.ticket(tid).status == "open"  # type: ignore[union-attr]
    assert bot.store.ticket(other.id).status == "open"  # type: ignore[union-attr]
    # the unknown chat gets no answer at all
    fake_telegram.push_message(-1009999999999, OFFICER_LINJAMSOS, "/antrian")
    fake_telegram.push_message(LINJAMSOS, OFFICER_LINJAMSOS, "/antrian")
    await fake_telegram.wait_for_async(lambda: any("Antrian" in (m.text or "") for m in fake_telegram.messages(LINJAMSOS)))
    assert fake_telegram.messages(-1009999999999) == []


async def test_media_team_corrects_labels_and_unit_as_feedback(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    mirror = await ticket_in(fake_telegram, MEDIA, tid)
    await press(fake_telegram, MEDIA, mirror.message_id, MEDIA_MEMBER, f"t:{tid}:fix")
    picker = fake_telegram.message(MEDIA, mirror.message_id)
    save = next(d for d in picker.callback_data if d.startswith(f"t:{tid}:fixu:pusdatin"))
    await press(fake_telegram, MEDIA, mirror.message_id, MEDIA_MEMBER, save)
    picker = fake_telegram.message(MEDIA, mirror.message_id)
    ok = next(d for d in picker.callback_data if d.startswith(f"t:{tid}:fixok"))
    assert ok.endswith(".pusdatin")
    await press(fake_telegram, MEDIA, mirror.message_id, MEDIA_MEMBER, ok)
    await ticket_in(fake_telegram, PUSDATIN, tid)
    feedback = list(bot.store.feedback_records())
    assert feedback and feedback[0]["unit"] == "pusdatin" and feedback[0]["text"].startswith("min PKH")


async def test_personal_data_is_revealed_only_on_request_and_logged(
        bot: Runtime, fake_instagram: FakeInstagram, fake_telegram: FakeTelegram) -> None:
    tid = (await polled(bot, fake_instagram))["pkh"]
    message = await ticket_in(fake_telegram, LINJAMSOS, tid)
    assert f"t:{tid}:reveal" in message.callback_data
    toast = await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_PDN, f"t:{tid}:reveal")
    assert toast.startswith("Maaf") and NIK not in (fake_telegram.message(LINJAMSOS, message.message_id).text or "")
    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:reveal")
    assert NIK in (fake_telegram.message(LINJAMSOS, message.message_id).text or "")
    reveals = [e for e in bot.store.ticket_events(tid) if e["kind"] == "revealed"]
    assert [e["actor"] for e in reveals] == ["7101"]
    await press(fake_telegram, LINJAMSOS, message.message_id, OFFICER_LINJAMSOS, f"t:{tid}:hide")
    assert NIK not in (fake_telegram.message(LINJAMSOS, message.message_id).text or "")
