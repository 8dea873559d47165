"""The Instagram client against the fake Graph API over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from bot.instagram import (
    Comment,
    InstagramClient,
    InstagramError,
    InstagramUnavailable,
    InvalidRequest,
    MessagingWindowClosed,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    TokenInvalid,
    TransientError,
    error_from_response,
    parse_comment,
    parse_message,
)
from tests.fakes.instagram_server import FakeInstagram, FakeSleep

IG_ID = "17841400000000001"
TOKEN = "IGAAtest-secret-token-123"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, slowdown_delay=0.5)


@pytest.fixture
def fake() -> Iterator[FakeInstagram]:
    with FakeInstagram() as server:
        server.set_clock(NOW)
        server.add_account(IG_ID, "kemensos.ri", TOKEN)
        yield server


@pytest.fixture
def sleep(fake: FakeInstagram) -> FakeSleep:
    return FakeSleep(fake)


@pytest_asyncio.fixture
async def client(fake: FakeInstagram, sleep: FakeSleep) -> AsyncIterator[InstagramClient]:
    async with InstagramClient(
        access_token=TOKEN, ig_user_id=IG_ID, base_url=fake.url, timeout=0.5, retry=FAST, sleep=sleep
    ) as c:
        yield c


async def all_comments(client: InstagramClient, media_id: str, page_size: int = 50) -> list[Comment]:
    return [c async for page in client.iter_comments(media_id, page_size=page_size) for c in page]


# ---- reading ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_whoami_accepts_plain_object_and_data_list(fake: FakeInstagram, client: InstagramClient) -> None:
    assert (await client.whoami()).username == "kemensos.ri"
    fake.me_as_list = True
    profile = await client.whoami()
    assert (profile.id, profile.username) == (IG_ID, "kemensos.ri")


@pytest.mark.asyncio
async def test_list_media_newest_first_with_our_types(fake: FakeInstagram, client: InstagramClient) -> None:
    old = fake.add_media(caption="lama", timestamp=NOW - timedelta(days=3))
    new = fake.add_media(caption="baru", timestamp=NOW - timedelta(hours=1))
    fake.add_comment(new, "mantap", "budi")
    media = await client.list_media(limit=10)
    assert [m.id for m in media] == [new, old]
    assert media[0].comments_count == 1 and media[0].caption == "baru"
    assert media[0].timestamp == NOW - timedelta(hours=1)
    assert fake.calls[-1].params["fields"] == "id,caption,timestamp,comments_count,permalink"


@pytest.mark.asyncio
async def test_list_media_follows_pages_up_to_limit(fake: FakeInstagram, client: InstagramClient) -> None:
    for i in range(130):
        fake.add_media(timestamp=NOW - timedelta(minutes=i))
    media = await client.list_media(limit=120)  # the fake serves at most 100 per page
    assert len({m.id for m in media}) == 120
    assert client.calls == 2


@pytest.mark.asyncio
async def test_comments_paginate_120_with_limit_25(fake: FakeInstagram, client: InstagramClient) -> None:
    media = fake.add_media()
    ids = {fake.add_comment(media, f"komentar {i}", f"user{i}", timestamp=NOW - timedelta(minutes=i))
           for i in range(120)}
    comments = await all_comments(client, media, page_size=25)
    assert [c.id for c in comments if c.id in ids] == [c.id for c in comments]
    assert {c.id for c in comments} == ids and len(comments) == 120
    assert client.calls == 5
    pages = [call for call in fake.calls if call.path.endswith("/comments")]
    assert [("after" in call.params) for call in pages] == [False, True, True, True, True]
    assert all("access_token" not in call.params for call in pages)  # stripped from paging.next


@pytest.mark.asyncio
async def test_replies_expanded_and_followed_across_pages(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.replies_page_size = 10
    media = fake.add_media()
    parent = fake.add_comment(media, "Kapan bansos cair?", "siti", timestamp=NOW - timedelta(hours=2))
    replies = [fake.add_comment(media, f"balasan {i}", "andi", parent_id=parent,
                                timestamp=NOW - timedelta(minutes=90 - i)) for i in range(23)]
    comments = await all_comments(client, media)
    assert comments[0].id == parent and comments[0].parent_id is None
    assert [c.id for c in comments[1:]] == replies
    assert all(c.parent_id == parent for c in comments[1:])
    assert [c.path.rsplit("/", 1)[1] for c in fake.calls] == ["comments", "replies", "replies"]


@pytest.mark.asyncio
async def test_empty_page_with_next_is_not_the_end(fake: FakeInstagram, client: InstagramClient) -> None:
    media = fake.add_media()
    visible_old = [fake.add_comment(media, "lama", "a", timestamp=NOW - timedelta(hours=5, minutes=i))
                   for i in range(3)]
    for i in range(10):  # a whole page of comments Meta does not list (restricted users)
        fake.add_comment(media, "spam", "bot", timestamp=NOW - timedelta(hours=1, minutes=i), restricted=True)
    pages = [page async for page in client.iter_comments(media, page_size=10)]
    assert pages[0] == []
    assert [c.id for page in pages for c in page] == visible_old


@pytest.mark.asyncio
async def test_conversations_and_only_twenty_detailed_messages(
    fake: FakeInstagram, client: InstagramClient
) -> None:
    conv = ""
    for i in range(25):
        conv, _ = fake.add_dm("warga1", f"pesan {i}", timestamp=NOW - timedelta(minutes=60 - i))
    other, _ = fake.add_dm("warga2", "halo", timestamp=NOW - timedelta(hours=3))
    conversations = await client.list_conversations()
    assert [c.id for c in conversations] == [conv, other]
    assert conversations[0].updated_time == NOW - timedelta(minutes=36)
    messages = [m async for page in client.iter_messages(conv) for m in page]
    assert [m.text for m in messages] == [f"pesan {i}" for i in range(24, 4, -1)]
    assert messages[0].sender_username == "warga1" and messages[0].conversation_id == conv
    assert len(client.skipped) == 5 and all("details unavailable" in s.reason for s in client.skipped)


# ---- acting ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reply_hide_and_private_reply(fake: FakeInstagram, client: InstagramClient) -> None:
    media = fake.add_media()
    comment = fake.add_comment(media, "Tolong dibantu", "budi")
    new_id = await client.reply_to_comment(comment, "Silakan cek DM ya")
    assert fake.sent_replies[-1].new_id == new_id
    assert await client.hide_comment(comment, True)
    assert (await all_comments(client, media))[0].hidden
    assert await client.hide_comment(comment, False)
    message_id = await client.private_reply(comment, "Halo Budi, mohon kirim NIK")
    assert fake.sent_dms[-1].message_id == message_id and fake.sent_dms[-1].comment_id == comment
    with pytest.raises(InvalidRequest):
        await client.private_reply(comment, "lagi")  # one private reply per comment


@pytest.mark.asyncio
async def test_private_reply_after_seven_days_is_window_closed(fake: FakeInstagram, client: InstagramClient) -> None:
    comment = fake.add_comment(fake.add_media(), "lama", "budi", timestamp=NOW - timedelta(days=8))
    with pytest.raises(MessagingWindowClosed):
        await client.private_reply(comment, "maaf terlambat")


@pytest.mark.asyncio
async def test_dm_window(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.add_dm("warga", "halo admin", timestamp=NOW - timedelta(hours=23))
    recipient = fake.user_id("warga")
    assert await client.send_dm(recipient, "Halo, ada yang bisa dibantu?")
    fake.advance(2 * 3600)  # 25 h after the citizen's last message
    with pytest.raises(MessagingWindowClosed) as caught:
        await client.send_dm(recipient, "Masih di sana?")
    assert caught.value.code == 10 and caught.value.subcode == 2534022
    assert client.calls == 2  # never retried
    assert await client.send_dm(recipient, "Dari petugas kami", human_agent=True)
    assert fake.sent_dms[-1].tag == "HUMAN_AGENT"


@pytest.mark.asyncio
async def test_dm_text_checked_before_sending(client: InstagramClient) -> None:
    with pytest.raises(ValueError):
        await client.send_dm("123", "x" * 1001)
    assert client.calls == 0


# ---- errors and retries ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_expired_token_raises_without_retry(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.expire_token(TOKEN)
    with pytest.raises(TokenInvalid) as caught:
        await client.list_media()
    assert (caught.value.code, caught.value.subcode) == (190, 463)
    assert caught.value.fbtrace_id
    assert client.calls == 1


@pytest.mark.asyncio
async def test_unknown_token(fake: FakeInstagram) -> None:
    async with InstagramClient(access_token="nope", ig_user_id=IG_ID, base_url=fake.url, retry=FAST) as c:
        with pytest.raises(TokenInvalid):
            await c.whoami()
        assert c.calls == 1


@pytest.mark.asyncio
async def test_buc_throttle_waits_regain_time_then_succeeds(
    fake: FakeInstagram, client: InstagramClient, sleep: FakeSleep
) -> None:
    fake.add_media()
    fake.set_rate_limit(2, window_seconds=60, code=80002, regain_minutes=1)
    await client.list_media()
    await client.list_media()
    media = await client.list_media()  # throttled, waits the 60 s Meta asked for, retried
    assert len(media) == 1
    assert max(sleep.delays) >= 60
    assert client.calls == 4


@pytest.mark.asyncio
async def test_app_throttle_code_4_backs_off(fake: FakeInstagram, client: InstagramClient, sleep: FakeSleep) -> None:
    fake.inject_error("/media", code=4, times=2)
    assert await client.list_media() == []
    assert client.calls == 3 and len(sleep.delays) == 2
    assert all(d <= FAST.max_delay for d in sleep.delays)


@pytest.mark.asyncio
async def test_throttle_longer_than_policy_is_raised(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.set_rate_limit(0, code=80002, regain_minutes=30)
    with pytest.raises(RateLimited) as caught:
        await client.list_media()
    assert caught.value.retry_after == 1800 and caught.value.code == 80002
    assert client.calls == 1


@pytest.mark.asyncio
async def test_5xx_retried(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.add_media()
    fake.inject_error("/media", http_status=500, times=2)
    assert len(await client.list_media()) == 1
    assert client.calls == 3


@pytest.mark.asyncio
async def test_5xx_gives_up_after_max_attempts(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.inject_error("/media", http_status=503, times=10)
    with pytest.raises(TransientError) as caught:
        await client.list_media()
    assert caught.value.http_status == 503
    assert client.calls == FAST.max_attempts


@pytest.mark.asyncio
async def test_transient_codes_retried(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.inject_error("/media", code=1, times=1)
    fake.inject_error("/media", code=368, is_transient=True, times=1)
    assert await client.list_media() == []
    assert client.calls == 3


@pytest.mark.asyncio
async def test_timeout_retried_then_succeeds(fake: FakeInstagram) -> None:
    fake.add_media()
    fake.inject_error("/media", delay=1.0, times=1)
    async with InstagramClient(access_token=TOKEN, ig_user_id=IG_ID, base_url=fake.url, timeout=0.2,
                               retry=FAST, sleep=FakeSleep()) as c:
        assert len(await c.list_media()) == 1
        assert c.calls == 2


@pytest.mark.asyncio
async def test_timeouts_exhausted_raise_unavailable(fake: FakeInstagram) -> None:
    fake.inject_error("/media", delay=1.0, times=2)
    policy = RetryPolicy(max_attempts=2, base_delay=0.01)
    async with InstagramClient(access_token=TOKEN, ig_user_id=IG_ID, base_url=fake.url, timeout=0.1,
                               retry=policy, sleep=FakeSleep()) as c:
        with pytest.raises(InstagramUnavailable) as caught:
            await c.list_media()
        assert isinstance(caught.value.__cause__, httpx.TimeoutException)
        assert c.calls == 2


@pytest.mark.asyncio
async def test_post_not_retried_after_read_timeout(fake: FakeInstagram) -> None:
    comment = fake.add_comment(fake.add_media(), "halo", "budi")
    fake.inject_error("/replies", method="POST", delay=1.0, times=1)
    async with InstagramClient(access_token=TOKEN, ig_user_id=IG_ID, base_url=fake.url, timeout=0.1,
                               retry=FAST, sleep=FakeSleep()) as c:
        with pytest.raises(InstagramUnavailable):
            await c.reply_to_comment(comment, "terima kasih")
        assert c.calls == 1  # the reply may have been posted: a retry could post it twice


@pytest.mark.asyncio
async def test_connection_refused_is_unavailable(fake: FakeInstagram) -> None:
    url = fake.url
    fake.stop()
    async with InstagramClient(access_token=TOKEN, ig_user_id=IG_ID, base_url=url, retry=FAST,
                               sleep=FakeSleep()) as c:
        with pytest.raises(InstagramUnavailable):
            await c.list_media()
        assert c.calls == FAST.max_attempts


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "exc_type"), [(10, PermissionDenied), (200, PermissionDenied), (100, InvalidRequest), (190, TokenInvalid)]
)
async def test_permanent_errors_never_retried(
    fake: FakeInstagram, client: InstagramClient, code: int, exc_type: type[InstagramError]
) -> None:
    fake.inject_error("/media", code=code, times=5)
    with pytest.raises(exc_type):
        await client.list_media()
    assert client.calls == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["missing_id", "bad_timestamp", "not_object"])
async def test_malformed_item_skipped_rest_of_page_kept(
    fake: FakeInstagram, client: InstagramClient, how: str
) -> None:
    media = fake.add_media()
    for i in range(5):
        fake.add_comment(media, f"k{i}", "budi", timestamp=NOW - timedelta(minutes=i))
    fake.inject_error("/comments", malformed_item=how)
    comments = await all_comments(client, media)
    assert [c.text for c in comments] == ["k1", "k2", "k3", "k4"]
    assert len(client.skipped) == 1 and client.skipped[0].kind == "comment"


@pytest.mark.asyncio
async def test_unparseable_page_retried(fake: FakeInstagram, client: InstagramClient) -> None:
    media = fake.add_media()
    fake.add_comment(media, "halo", "budi")
    fake.inject_error("/comments", malformed_body=True)
    assert [c.text for c in await all_comments(client, media)] == ["halo"]
    assert client.calls == 2


@pytest.mark.asyncio
async def test_unparseable_post_answer_not_retried(fake: FakeInstagram, client: InstagramClient) -> None:
    comment = fake.add_comment(fake.add_media(), "halo", "budi")
    fake.inject_error("/replies", method="POST", malformed_body=True)
    with pytest.raises(TransientError):
        await client.reply_to_comment(comment, "terima kasih")
    assert client.calls == 1


# ---- usage headers ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_usage_absent_is_unknown_not_zero(client: InstagramClient) -> None:
    await client.list_media()
    assert client.usage.percent is None


@pytest.mark.asyncio
async def test_high_usage_slows_down_before_next_call(
    fake: FakeInstagram, client: InstagramClient, sleep: FakeSleep
) -> None:
    fake.set_usage(business=85, app=30)
    await client.list_media()
    assert client.usage.percent == 85 and sleep.delays == []
    await client.list_media()
    assert sleep.delays == [FAST.slowdown_delay]
    fake.set_usage(business=20, app=10)
    await client.list_media()  # slowed once more (last figure was 85), then learns it is 20
    await client.list_media()
    assert sleep.delays == [FAST.slowdown_delay] * 2
    assert client.usage.percent == 20


@pytest.mark.asyncio
async def test_usage_headers_from_rate_limit(fake: FakeInstagram, client: InstagramClient) -> None:
    fake.set_rate_limit(10)
    for _ in range(3):
        await client.list_media()
    assert client.usage.business is not None and client.usage.business["call_count"] == 30
    assert client.usage.app is not None and client.usage.app["call_count"] == 30


# ---- hygiene -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_token_never_logged(
    fake: FakeInstagram, client: InstagramClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    media = fake.add_media()
    for i in range(60):
        fake.add_comment(media, f"k{i}", "budi", timestamp=NOW - timedelta(minutes=i))
    fake.inject_error("/comments", malformed_item=True)
    fake.inject_error("/media", http_status=500)
    await client.list_media()
    await all_comments(client, media, page_size=25)
    assert caplog.records
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(
    ("error", "headers", "exc_type"),
    [
        ({"code": 10, "message": "This message is sent outside of allowed window."}, {}, MessagingWindowClosed),
        ({"code": 10, "error_subcode": 2018278, "message": "x"}, {}, MessagingWindowClosed),
        ({"code": 10, "message": "Permission denied"}, {}, PermissionDenied),
        ({"code": 230, "message": "x"}, {}, PermissionDenied),
        ({"code": 17, "message": "x"}, {}, RateLimited),
        ({"code": 32, "message": "x"}, {}, RateLimited),
        ({"code": 2, "message": "x"}, {}, TransientError),
        ({"code": 9000001, "message": "x"}, {}, InstagramError),
    ],
)
def test_error_translation(error: dict[str, object], headers: dict[str, str], exc_type: type) -> None:
    exc = error_from_response(400, {"error": error}, headers)
    assert type(exc) is exc_type


def test_rate_limited_reads_regain_from_buc_header() -> None:
    header = '{"1784":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":7}]}'
    exc = error_from_response(400, {"error": {"code": 80002, "message": "x"}},
                              {"x-business-use-case-usage": header})
    assert isinstance(exc, RateLimited) and exc.retry_after == 420


def test_numeric_ids_are_the_same_ids_and_a_bool_is_no_id() -> None:
    raw = {"id": 17900000000000001, "text": "bansos belum cair", "timestamp": "2026-12-03T10:00:00+0000",
           "from": {"id": 42, "username": "budi"}, "parent_id": 17900000000000000}
    comment = parse_comment(raw, "m1")
    assert (comment.id, comment.user_id, comment.parent_id) == ("17900000000000001", "42", "17900000000000000")
    message = parse_message({"id": 7, "created_time": "2026-12-03T10:00:00+0000", "from": {"id": 9},
                             "message": "halo"}, "c1")
    assert (message.id, message.sender_id) == ("7", "9")
    with pytest.raises(ValueError, match="missing id"):
        parse_comment({**raw, "id": True}, "m1")


@pytest.mark.parametrize(("value", "hidden"), [(True, True), (False, False), ("false", False), ("true", False),
                                              (1, False), (None, False)])
def test_only_the_boolean_true_means_hidden(value: object, hidden: bool) -> None:
    """bool("false") is True: a comment Meta did not hide must not be taken for one the bot hid."""
    raw = {"id": "1", "text": "x", "timestamp": "2026-12-03T10:00:00+0000", "hidden": value}
    assert parse_comment(raw, "m1").hidden is hidden


def test_timestamps_are_read_in_utc_and_one_past_the_calendar_is_a_bad_item() -> None:
    raw = {"id": "1", "text": "x", "timestamp": "2026-12-03T17:00:00+0700"}
    assert parse_comment(raw, "m1").timestamp.isoformat() == "2026-12-03T10:00:00+00:00"
    with pytest.raises(ValueError, match="outside the calendar"):
        parse_comment({**raw, "timestamp": "9999-12-31T23:59:59-2359"}, "m1")
