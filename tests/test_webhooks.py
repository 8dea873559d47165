"""The Instagram webhook endpoint, served for real on 127.0.0.1 and fed by a fake Meta sender.

The store is a real SQLite file; polling runs against the fake Graph API; the
only stand-in is a tiny classifier (the trained model is not needed to show
that a message arriving twice makes one ticket).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from bot import jobs
from bot.config import Settings, load_settings
from bot.store import Store
from bot.triage import InboundMessage
from bot.webhooks import PATH, ReplayGuard, parse_payload, signature_problem, start_webhook_server, webhook_app
from classifiers.base import LABELS, MessageIn, Prediction
from tests.conftest import ROUTING_FILE, TOKENS
from tests.fakes.instagram_server import FakeInstagram
from tests.fakes.meta_webhooks import (
    MetaWebhookSender, comment_change, dm, echo, entry, payload, reaction, serialize, sign,
)

KEMENSOS = "17841400000000001"
KEMENDAG = "17841400000000002"
VERIFY_TOKEN = "verify-me-7f3a"
APP_SECRET = "ig-app-secret-0123456789abcdef"
NOW = datetime(2026, 5, 4, 3, 0, tzinfo=timezone.utc)  # Monday 10:00 in Jakarta


def webhook_settings(tmp_path: Path, instagram: FakeInstagram | None, *, verify_token: str | None = VERIFY_TOKEN,
                     app_secret: str | None = APP_SECRET) -> Settings:
    """tests.conftest.settings_for(tmp_path, instagram, None) plus the two webhook secrets."""
    env = {"TRIAGE_CONFIG": str(ROUTING_FILE), "TRIAGE_DB": str(tmp_path / "triage.db")}
    if instagram is not None:
        env["INSTAGRAM_GRAPH_URL"] = instagram.url
        env.update({f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    if verify_token is not None:
        env["INSTAGRAM_WEBHOOK_VERIFY_TOKEN"] = verify_token
    if app_secret is not None:
        env["INSTAGRAM_APP_SECRET"] = app_secret
    return load_settings(env)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hook:
    """A running webhook server, its store, the Meta sender pointed at it, and what on_stored saw."""

    url: str
    store: Store
    meta: MetaWebhookSender
    clock: Clock
    stored: list[list[str]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        cursor = self.store.db.execute("SELECT * FROM messages ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows()]

    async def settle(self) -> None:
        """Let the background on_stored tasks run."""
        for _ in range(20):
            await asyncio.sleep(0.01)


@asynccontextmanager
async def serving(settings: Settings, store: Store, on_stored: Callable[[list[str]], Awaitable[None]] | None,
                  clock: Clock) -> AsyncIterator[str]:
    app = webhook_app(settings, store, on_stored, clock=clock)
    runner = await start_webhook_server(app, "127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def hook(tmp_path: Path, fake_instagram: FakeInstagram) -> AsyncIterator[Hook]:
    settings = webhook_settings(tmp_path, fake_instagram)
    store = Store(settings.db_path)
    clock = Clock(NOW)
    stored: list[list[str]] = []

    async def on_stored(new_ids: list[str]) -> None:
        stored.append(new_ids)

    async with serving(settings, store, on_stored, clock) as base:
        async with MetaWebhookSender(base + PATH, APP_SECRET) as meta:
            yield Hook(base + PATH, store, meta, clock, stored)
    store.close()


class EveryoneComplains:
    """A stand-in classifier: every message is a complaint for the account's default unit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def predict(self, messages: Sequence[MessageIn]) -> list[Prediction]:
        scores = {label: float(label == "complaint") for label in LABELS}
        return [Prediction(("complaint",), scores, self.settings.routing.accounts[m.account].default_unit, "id", "default")
                for m in messages]


# -- the handshake and health ----------------------------------------------------


async def test_handshake_answers_the_challenge_only_to_the_right_token(hook: Hook) -> None:
    good = await hook.meta.verify(VERIFY_TOKEN, challenge="1158201444")
    assert good.status_code == 200
    assert good.text == "1158201444"
    assert good.headers["content-type"].startswith("text/plain")
    assert (await hook.meta.verify("not-the-token")).status_code == 403
    assert (await hook.meta.verify(None)).status_code == 403
    assert (await hook.meta.verify(VERIFY_TOKEN, mode="unsubscribe")).status_code == 403


async def test_healthz(hook: Hook) -> None:
    async with MetaWebhookSender(hook.url.removesuffix(PATH) + "/healthz", APP_SECRET) as other:
        response = await other._client.get(other.url)
    assert (response.status_code, response.text) == (200, "ok")


async def test_unconfigured_secrets_refuse_and_say_which_variable_to_set(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = webhook_settings(tmp_path, None, verify_token=None, app_secret=None)
    store = Store(settings.db_path)
    async with serving(settings, store, None, Clock(NOW)) as base:
        async with MetaWebhookSender(base + PATH, APP_SECRET) as meta:
            assert (await meta.verify("anything")).status_code == 403
            response = await meta.send(payload(entry(KEMENSOS, changes=[comment_change()])))
    assert response.status_code == 503
    assert "INSTAGRAM_WEBHOOK_VERIFY_TOKEN" in caplog.text
    assert "INSTAGRAM_APP_SECRET" in caplog.text
    assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    store.close()


# -- ingesting -------------------------------------------------------------------


async def test_a_signed_comment_and_dm_are_stored_once_with_the_polling_fields(hook: Hook) -> None:
    entry_time = int(NOW.timestamp()) - 60
    sent_ms = int(NOW.timestamp() * 1000) - 30_000
    body = payload(
        entry(KEMENSOS, time=entry_time, changes=[comment_change(
            "17850000000000011", "Min, PKH tahap 2 kapan cair?", username="ibu.sari", user_id="9001",
            media_id="17900000000000002")]),
        entry(KEMENSOS, messaging=[dm("Selamat siang, NIK saya tidak ditemukan", mid="aWdfZAG1faXRlbToxOklH",
                                      sender_id="9002", timestamp_ms=sent_ms)]),
    )
    response = await hook.meta.send(body)
    assert (response.status_code, response.text) == (200, "ok")
    rows = {r["id"]: r for r in hook.rows()}
    assert set(rows) == {"17850000000000011", "aWdfZAG1faXRlbToxOklH"}
    comment, message = rows["17850000000000011"], rows["aWdfZAG1faXRlbToxOklH"]
    assert {k: comment[k] for k in ("account", "channel", "text", "author_id", "author_username", "media_id",
                                    "parent_id", "conversation_id", "source")} == {
        "account": "kemensos", "channel": "comment", "text": "Min, PKH tahap 2 kapan cair?", "author_id": "9001",
        "author_username": "ibu.sari", "media_id": "17900000000000002", "parent_id": None,
        "conversation_id": None, "source": "webhook"}
    assert comment["created_at"] == datetime.fromtimestamp(entry_time, timezone.utc).isoformat()
    assert {k: message[k] for k in ("account", "channel", "text", "author_id", "conversation_id", "source")} == {
        "account": "kemensos", "channel": "dm", "text": "Selamat siang, NIK saya tidak ditemukan",
        "author_id": "9002", "conversation_id": None, "source": "webhook"}
    assert message["created_at"] == datetime.fromtimestamp(sent_ms // 1000, timezone.utc).isoformat()
    assert message["ingested_at"] == NOW.isoformat()
    await hook.settle()
    assert hook.stored == [["17850000000000011", "aWdfZAG1faXRlbToxOklH"]]

    # Meta delivers the same updates again in a new notification (a new entry time, so a new signature)
    again = payload(entry(KEMENSOS, time=entry_time + 5, changes=[comment_change(
        "17850000000000011", "Min, PKH tahap 2 kapan cair?", username="ibu.sari", user_id="9001")]))
    assert (await hook.meta.send(again)).status_code == 200
    await hook.settle()
    assert len(hook.rows()) == 2
    assert hook.stored == [["17850000000000011", "aWdfZAG1faXRlbToxOklH"]]  # nothing new: no second triage


async def test_replies_and_live_comments_keep_their_parent_and_field(hook: Hook) -> None:
    body = payload(entry(KEMENSOS, changes=[
        comment_change("17850000000000021", "saya juga min", parent_id="17850000000000011"),
        comment_change("17850000000000022", "halo dari siaran langsung", field="live_comments"),
    ]))
    assert (await hook.meta.send(body)).status_code == 200
    rows = {r["id"]: r for r in hook.rows()}
    assert rows["17850000000000021"]["parent_id"] == "17850000000000011"
    assert json.loads(rows["17850000000000022"]["raw"])["field"] == "live_comments"


async def test_indonesian_with_emoji_is_verified_over_the_raw_bytes(hook: Hook) -> None:
    text = "Pak/Bu, bansos saya belum cair 😭🙏 sudah 3 bulan… tolong dicek ya — terima kasih 🇮🇩"
    body = payload(entry(KEMENSOS, changes=[comment_change("17850000000000031", text, username="warga.café")]))
    raw = serialize(body)
    assert raw.isascii() and b"\\ud83d\\ude2d" in raw and b"Pak\\/Bu" in raw and b"\\u2026" in raw
    # the trap this guards against: the parsed JSON re-serialised signs differently
    assert sign(APP_SECRET, json.dumps(json.loads(raw), ensure_ascii=False).encode()) != sign(APP_SECRET, raw)
    assert (await hook.meta.send(body)).status_code == 200
    [row] = hook.rows()
    assert row["text"] == text and row["author_username"] == "warga.café"
    # whatever bytes come, they are what is checked: unescaped UTF-8, correctly signed, is fine too
    utf8 = json.dumps(payload(entry(KEMENSOS, changes=[comment_change("17850000000000032", text)])),
                      ensure_ascii=False).encode()
    assert (await hook.meta.send(None, body=utf8)).status_code == 200
    assert hook.store.message("17850000000000032").text == text  # type: ignore[union-attr]


async def test_a_malformed_entry_is_skipped_and_the_rest_of_the_batch_stored(
        hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    no_id_comment = comment_change()
    del no_id_comment["value"]["id"]
    no_mid = dm("tanpa mid")
    del no_mid["message"]["mid"]
    body = payload(
        {"time": 1777633329, "changes": [comment_change("17850000000000040")]},  # an entry without an id
        "not an entry",  # type: ignore[arg-type]
        entry(KEMENSOS, changes=[
            no_id_comment,
            {"field": "comments", "value": "not an object"},
            42,
            comment_change("17850000000000041", "komentar yang baik"),
            {"field": "mentions", "value": {"media_id": "1", "comment_id": "2"}},  # not a field we triage
        ]),
        entry(KEMENSOS, messaging=[no_mid, {"sender": {"id": "9"}, "message": "x"},
                                   dm("pesan yang baik", mid="mid-good")]),
        {"id": KEMENSOS, "time": 1, "changes": {"not": "a list"}},
    )
    response = await hook.meta.send(body)
    assert response.status_code == 200
    assert hook.ids() == ["17850000000000041", "mid-good"]
    assert caplog.text.count("webhook: skipped") == 8


async def test_echoes_deletions_own_messages_and_reactions_are_ignored(hook: Hook) -> None:
    body = payload(entry(KEMENSOS, messaging=[
        echo(KEMENSOS, mid="mid-echo"),
        dm("pesan dari akun sendiri", mid="mid-own", sender_id=KEMENSOS),
        dm(None, mid="mid-deleted", is_deleted=True),
        reaction("9002", "mid-x", KEMENSOS),
        dm(None, mid="mid-photo", attachments=[{"type": "image", "payload": {"url": "https://cdn/x.jpg"}}]),
    ]))
    assert (await hook.meta.send(body)).status_code == 200
    assert [(r["id"], r["text"]) for r in hook.rows()] == [("mid-photo", "")]


async def test_an_unknown_account_is_skipped_and_known_ones_in_the_batch_kept(
        hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    body = payload(
        entry("17841499999999999", changes=[comment_change("17850000000000051")]),
        entry(KEMENDAG, changes=[comment_change("17850000000000052", "harga minyak goreng naik")]),
    )
    assert (await hook.meta.send(body)).status_code == 200
    assert [(r["id"], r["account"]) for r in hook.rows()] == [("17850000000000052", "kemendag")]
    assert "unknown Instagram account id 17841499999999999" in caplog.text


async def test_other_objects_and_signed_garbage_store_nothing(hook: Hook) -> None:
    assert (await hook.meta.send(payload(entry(KEMENSOS, changes=[comment_change()]), obj="page"))).status_code == 200
    assert (await hook.meta.send(None, body=b"{not json")).status_code == 400
    assert (await hook.meta.send(None, body=b"\xff\xfe")).status_code == 400
    assert hook.rows() == []


async def test_a_comment_with_half_an_emoji_is_repaired_and_its_neighbours_stored(hook: Hook) -> None:
    # Valid JSON, no valid UTF-8: it used to answer 500 on every one of Meta's retries,
    # losing the good comment and DM delivered with it.
    body = payload(entry(KEMENSOS, changes=[comment_change("17850000000000091", "bansos belum cair \ud83d",
                                                             username="warga\udc4d"),
                                            comment_change("17850000000000092", "PKH saya belum cair")],
                         messaging=[dm("tolong dicek \ud83d\ude4f", mid="mid-half")]))
    assert b"\\ud83d" in serialize(body)
    response = await hook.meta.send(body)
    assert response.status_code == 200
    await hook.settle()
    assert hook.ids() == ["17850000000000091", "17850000000000092", "mid-half"]
    assert hook.stored == [["17850000000000091", "17850000000000092", "mid-half"]]
    repaired = hook.store.message("17850000000000091")
    assert repaired is not None and repaired.text == "bansos belum cair \ufffd"
    assert repaired.author_username == "warga\ufffd"
    assert hook.store.message("mid-half").text == "tolong dicek \U0001f64f"  # type: ignore[union-attr]
    assert (await hook.meta.replay()).status_code == 200  # Meta's retry changes nothing


async def test_a_comment_that_cannot_be_stored_is_quarantined_and_reported(hook: Hook) -> None:
    odd = comment_change("17850000000000094", "PKH belum cair")
    odd["value"]["from"]["username"] = {"not": "a name"}  # signed by Meta, still not what we can store
    body = payload(entry(KEMENSOS, changes=[odd, comment_change("17850000000000095", "PKH saya belum cair")]))
    assert (await hook.meta.send(body)).status_code == 200
    assert hook.ids() == ["17850000000000095"]
    [kept] = hook.store.quarantined()
    assert (kept["item_id"], kept["account"], kept["source"]) == ("17850000000000094", "kemensos", "webhook")
    assert "\"not\": \"a name\"" in kept["raw"]  # kept whole, for a person to read
    [alert] = hook.store.undelivered_alerts()
    assert alert["text"].startswith("1 pesan Instagram akun kemensos (dari webhook) rusak")
    assert "17850000000000094" in alert["text"]
    # Meta's retry of the same comment (new signature) is not stored or reported again
    assert (await hook.meta.send(payload(entry(KEMENSOS, changes=[odd])))).status_code == 200
    assert len(hook.store.quarantined()) == 1 and len(hook.store.undelivered_alerts()) == 1


async def test_a_signed_body_nested_too_deeply_is_refused_with_400(hook: Hook) -> None:
    body = b'{"object": "instagram", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await hook.meta.send(None, body=body)
    assert (response.status_code, response.text) == (400, "nested too deeply")
    # the server goes on taking deliveries
    assert (await hook.meta.send(payload(entry(KEMENSOS, changes=[comment_change("17850000000000093")])))).status_code == 200
    assert hook.ids() == ["17850000000000093"]


# -- signatures and replays -------------------------------------------------------


async def test_bad_missing_malformed_and_tampered_signatures_are_refused(
        hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    body = payload(entry(KEMENSOS, changes=[comment_change("17850000000000061")]))
    assert (await hook.meta.send_bad_signature(body)).status_code == 403
    assert (await hook.meta.send_unsigned(body)).status_code == 403
    good = sign(APP_SECRET, serialize(body))
    for malformed in ("sha1=" + good[7:], good[7:], "sha256=xyz", good[:-2], good.upper().replace("SHA256", "md5")):
        assert (await hook.meta.send(body, signature=malformed)).status_code == 403, malformed
    tampered = payload(entry(KEMENSOS, changes=[comment_change("17850000000000061", "isi yang diubah")]))
    assert (await hook.meta.send_tampered(body, tampered)).status_code == 403
    await hook.settle()
    assert hook.rows() == [] and hook.stored == []
    assert APP_SECRET not in caplog.text
    assert caplog.text.count("webhook refused") == 8
    # an upper-case hex digest is the same digest
    assert (await hook.meta.send(body, signature="sha256=" + good[7:].upper())).status_code == 200


async def test_a_replay_is_acknowledged_and_processes_nothing(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    body = payload(entry(KEMENSOS, changes=[comment_change("17850000000000071")]))
    assert (await hook.meta.send(body)).status_code == 200
    await hook.settle()
    hook.store.db.execute("DELETE FROM messages")  # so that processing the replay would show
    replayed = await hook.meta.replay()
    assert (replayed.status_code, replayed.text) == (200, "already received")  # or Meta resends for 36 h
    await hook.settle()
    assert hook.rows() == [] and hook.stored == [["17850000000000071"]]
    assert "replay" in caplog.text
    # past the replay window (Meta stops retrying after ~36 h) the guard forgets; the store still dedupes
    hook.clock.now = NOW + timedelta(hours=49)
    assert (await hook.meta.replay(0)).status_code == 200


async def test_a_request_that_failed_to_store_is_processed_when_meta_retries(tmp_path: Path) -> None:
    class LockedOnce(Store):
        failures = 1

        def save_messages(self, messages: Iterable[InboundMessage], **kwargs: Any) -> list[str]:
            if self.failures:
                self.failures -= 1
                raise sqlite3.OperationalError("database is locked")
            return super().save_messages(messages, **kwargs)

    settings = webhook_settings(tmp_path, None)
    store = LockedOnce(settings.db_path)
    async with serving(settings, store, None, Clock(NOW)) as base:
        async with MetaWebhookSender(base + PATH, APP_SECRET) as meta:
            assert (await meta.send(payload(entry(KEMENSOS, changes=[comment_change("17850000000000081")])))).status_code == 500
            assert (await meta.replay()).status_code == 200  # Meta's retry: same bytes, same signature
    assert store.known_message_ids(["17850000000000081"]) == {"17850000000000081"}
    store.close()


# -- webhook and polling together ---------------------------------------------------


async def test_a_comment_and_dm_seen_by_webhook_and_poll_make_one_row_and_one_ticket(
        tmp_path: Path, fake_instagram: FakeInstagram) -> None:
    settings = webhook_settings(tmp_path, fake_instagram)
    store = Store(settings.db_path)
    classifier = EveryoneComplains(settings)
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0))
    fake_instagram.set_clock(clock.now)
    tickets: list[int] = []

    async def triage(new_ids: list[str]) -> None:  # what `triage webhook` wires in
        tickets.extend(await jobs.triage_pending(settings, store, classifier, now=clock(),
                                                 destinations=jobs.ticket_destinations(settings)))

    media = fake_instagram.add_media(KEMENSOS, caption="Penyaluran bansos", timestamp=clock.now - timedelta(hours=1))
    text = "Min, bansos saya belum cair 🙏"
    comment_id = fake_instagram.add_comment(media, text, "ibu.sari", timestamp=clock.now - timedelta(minutes=2))
    _, mid = fake_instagram.add_dm("pak.budi", "NIK saya tidak terdaftar", account=KEMENSOS,
                                   timestamp=clock.now - timedelta(minutes=1))
    async with serving(settings, store, triage, clock) as base:
        async with MetaWebhookSender(base + PATH, APP_SECRET) as meta:
            response = await meta.send(payload(
                entry(KEMENSOS, time=int(clock.now.timestamp()) - 120, changes=[comment_change(
                    comment_id, text, username="ibu.sari", user_id=fake_instagram.user_id("ibu.sari"),
                    media_id=media)]),
                entry(KEMENSOS, messaging=[dm("NIK saya tidak terdaftar", mid=mid,
                                              sender_id=fake_instagram.user_id("pak.budi"))]),
            ))
            assert response.status_code == 200
    # runner.cleanup() waited for the background triage
    assert len(tickets) == 2

    report = await jobs.poll_account(settings, store, "kemensos", now=clock.now + timedelta(minutes=5))
    assert report.error is None and report.stopped is None
    assert report.new_ids == []  # both were already stored by the webhook
    assert await jobs.triage_pending(settings, store, classifier, now=clock.now) == []
    rows = store.db.execute("SELECT id, source, author_id, media_id FROM messages ORDER BY channel").fetchall()
    assert rows == [(comment_id, "webhook", fake_instagram.user_id("ibu.sari"), media),
                    (mid, "webhook", fake_instagram.user_id("pak.budi"), None)]
    assert store.db.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM tickets").fetchone() == (2, 2)
    store.close()


async def test_a_comment_polled_first_is_not_stored_again_by_the_webhook(
        hook: Hook, fake_instagram: FakeInstagram, tmp_path: Path) -> None:
    settings = webhook_settings(tmp_path, fake_instagram)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    fake_instagram.set_clock(now)
    media = fake_instagram.add_media(KEMENSOS, caption="x", timestamp=now - timedelta(hours=1))
    comment_id = fake_instagram.add_comment(media, "kapan cair min", "warga1", timestamp=now)
    report = await jobs.poll_account(settings, hook.store, "kemensos", now=now)
    assert report.new_ids == [comment_id]
    response = await hook.meta.send(payload(entry(KEMENSOS, changes=[comment_change(comment_id, "kapan cair min")])))
    assert response.status_code == 200
    await hook.settle()
    assert [(r["id"], r["source"]) for r in hook.rows()] == [(comment_id, "poll")]
    assert hook.stored == []


async def test_a_failing_on_stored_is_logged_not_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = webhook_settings(tmp_path, None)
    store = Store(settings.db_path)

    async def broken(new_ids: list[str]) -> None:
        raise RuntimeError("classifier exploded")

    async with serving(settings, store, broken, Clock(NOW)) as base:
        async with MetaWebhookSender(base + PATH, APP_SECRET) as meta:
            assert (await meta.send(payload(entry(KEMENSOS, changes=[comment_change("17850000000000091")])))).status_code == 200
    assert "processing 1 new message(s) failed" in caplog.text and "classifier exploded" in caplog.text
    assert [m.id for m in store.untriaged_messages()] == ["17850000000000091"]  # kept for the next triage run
    store.close()


# -- the pure parts ------------------------------------------------------------------


def test_a_field_name_that_is_no_string_skips_its_change_not_the_notification() -> None:
    """`field` as a list or object used to raise TypeError (unhashable) out of the whole parse."""
    body = payload(entry(KEMENSOS, changes=[{"field": [], "value": {"id": "c0", "text": "x"}},
                                            {"field": {"a": 1}, "value": {"id": "c1", "text": "y"}},
                                            comment_change("c2", "komentar yang baik")]))
    messages, problems = parse_payload(body, {KEMENSOS: "kemensos"}, now=NOW)
    assert [m.id for m in messages] == ["c2"]
    assert problems == ["entry[0].changes[0]: change without a field name",
                        "entry[0].changes[1]: change without a field name"]


def test_times_are_read_in_the_unit_meta_uses() -> None:
    accounts = {KEMENSOS: "kemensos"}
    body = payload(
        entry(KEMENSOS, time=1777633329, changes=[comment_change("c1")]),
        entry(KEMENSOS, time=1777633403120, changes=[comment_change("c2")]),  # milliseconds, defensively
        entry(KEMENSOS, messaging=[dm("x", mid="m1", timestamp_ms=1777633403001)]),
        {"id": KEMENSOS, "changes": [comment_change("c3")]},  # no time: the clock
    )
    messages, problems = parse_payload(body, accounts, now=NOW)
    assert problems == []
    assert [m.created_at for m in messages] == [
        datetime.fromtimestamp(1777633329, timezone.utc), datetime.fromtimestamp(1777633403.12, timezone.utc),
        datetime.fromtimestamp(1777633403.001, timezone.utc), NOW]


def test_replay_guard_forgets_after_its_window_and_beyond_its_size() -> None:
    guard = ReplayGuard(ttl=timedelta(hours=1), max_entries=3)
    assert guard.claim("a", NOW) and not guard.claim("a", NOW + timedelta(minutes=59))
    assert guard.claim("a", NOW + timedelta(hours=1))
    for key in "bcd":
        assert guard.claim(key, NOW + timedelta(hours=1))
    assert len(guard) == 3 and guard.claim("a", NOW + timedelta(hours=1))  # "a" was the oldest, pushed out
    guard.release("a")
    assert guard.claim("a", NOW + timedelta(hours=1))


@hyp_settings(max_examples=60, deadline=None)
@given(text=st.text(), flip=st.integers(min_value=0))
def test_meta_serialisation_verifies_and_any_changed_byte_does_not(text: str, flip: int) -> None:
    body = serialize(payload(entry(KEMENSOS, changes=[comment_change("1", text)])))
    header = sign(APP_SECRET, body)
    assert body.isascii()
    assert signature_problem(APP_SECRET, body, header) is None
    i = flip % len(body)
    changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
    assert signature_problem(APP_SECRET, changed, header) == "wrong"
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["text"] == text
