"""The jobs: each reads the store, acts, and writes what it did back to the store.

Jobs take `now` as an argument so that a person or a test can run them for
any moment; the scheduler passes the real clock.
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Sequence

from bot import service, surge_job
from bot.config import Settings
from bot.deadlines import deadline
from bot.instagram import Comment, DirectMessage, InstagramClient, InstagramError, SkippedItem, TokenInvalid, meta_id
from bot.polling import PollState, collect
from bot.store import Store
from bot.tokens import current_token
from bot.triage import InboundMessage, TicketDecision, decide
from classifiers.base import Classifier, Prediction

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    account: str
    new_messages: int = 0
    calls: int = 0
    skipped: int = 0
    stopped: str | None = None
    error: str | None = None
    new_ids: list[str] = field(default_factory=list)


async def poll_account(
    settings: Settings,
    store: Store,
    account: str,
    *,
    now: datetime,
    client: InstagramClient | None = None,
    full: bool = False,
) -> PollReport:
    """One poll of one account: new comments, replies and DMs into the store.

    Messages and the poll state that says they were seen are written in one
    transaction, so a poll killed half-way is simply done again next time.
    With full=True the whole backfill window is read again, ignoring the saved
    counts: the daily reconciliation that finds comments an unchanged count hid
    (as many deleted as added between two polls). Known ids are skipped as usual."""
    report = PollReport(account)
    state_json, stopped = store.poll_state(account)
    if stopped:
        report.stopped = stopped
        return report
    acc = settings.routing.accounts[account]
    own_client = client is None
    if client is None:
        client = InstagramClient(access_token=current_token(settings, store, account, now),
                                 ig_user_id=acc.instagram_user_id, base_url=settings.instagram_graph_url)
    try:
        result = await collect(
            client,
            PollState.from_json(state_json) if state_json and not full else None,
            now=now,
            is_known=store.known_message_ids,
            backfill_days=settings.routing.polling.backfill_days,
            media_limit=settings.routing.polling.media_limit,
        )
    except TokenInvalid as err:
        _stop_account(store, account, acc.token_env, err, now)
        report.stopped = str(err)
        return report
    except InstagramError as err:
        # An outage fails every poll; the media team hears of it once an hour, not every few minutes.
        if not store.has_recent_alert("instagram_error", account, now - timedelta(hours=1)):
            store.add_alert("instagram_error", f"Gagal mengambil pesan akun {account} dari Instagram setelah "
                            f"beberapa kali mencoba: {err.message} (kode {err.code}). Bot akan mencoba lagi.",
                            now=now, account=account)
        log.warning("poll of %s failed: %s", account, err)
        report.error = str(err)
        return report
    finally:
        if own_client:
            await client.aclose()
    messages = [*(_from_comment(account, c) for c in result.new_comments), *(_from_dm(account, d) for d in result.new_dms)]
    report.new_ids = store.save_messages(messages, now=now, account_state=(account, result.new_state.to_json()))
    report.new_messages, report.calls, report.skipped = len(report.new_ids), result.calls_made, len(result.skipped)
    _report_unreadable(store, account, [s for s in result.skipped if not s.retried], now)
    return report


SKIPPED_ALERT_EVERY = timedelta(hours=6)
_KIND_WORDS = {"comment": "komentar", "message": "DM", "conversation": "percakapan", "media": "postingan"}


def _report_unreadable(store: Store, account: str, lost: list[SkippedItem], now: datetime) -> None:
    """Items Meta sent in a shape we cannot read are not polled again: the media team hears of
    them (ids to look up on Instagram), at most every few hours, so nothing vanishes unseen."""
    if not lost or store.has_recent_alert("instagram_unreadable", account, now - SKIPPED_ALERT_EVERY):
        return
    ids = [meta_id(s.raw.get("id")) if isinstance(s.raw, dict) else None for s in lost]
    named = ", ".join(f"{_KIND_WORDS.get(s.kind, s.kind)} {i}" for s, i in zip(lost, ids) if i)
    store.add_alert("instagram_unreadable",
                    f"{len(lost)} item dari Instagram akun {account} tidak bisa dibaca (datanya rusak) dan "
                    f"dilewati{': ' + named if named else ''}. Periksa langsung di Instagram agar tidak ada "
                    f"pesan warga yang terlewat.", now=now, account=account)


def _stop_account(store: Store, account: str, token_env: str, err: Exception, now: datetime) -> None:
    """An expired or revoked token will not heal by retrying: stop and tell people."""
    log.warning("stopping polling of %s: %s", account, err)
    store.stop_polling(account, f"token: {err}", now)
    store.add_alert(
        "token_invalid",
        f"Token Instagram akun {account} kedaluwarsa atau dicabut; pengambilan pesan akun ini dihentikan. "
        f"Perbarui token di variabel {token_env}, lalu jalankan: triage resume {account}",
        now=now,
        account=account,
    )


def _from_comment(account: str, c: Comment) -> InboundMessage:
    return InboundMessage(
        id=c.id, account=account, channel="comment", text=c.text or "", created_at=c.timestamp,
        author_id=c.user_id, author_username=c.username, media_id=c.media_id,
        parent_id=c.parent_id, permalink=c.permalink, raw=c.raw,
    )


def _from_dm(account: str, d: DirectMessage) -> InboundMessage:
    return InboundMessage(
        id=d.id, account=account, channel="dm", text=d.text or "", created_at=d.created_time,
        author_id=d.sender_id, author_username=d.sender_username,
        conversation_id=d.conversation_id, raw=d.raw,
    )


def ticket_destinations(settings: Settings) -> Callable[[int, TicketDecision], Sequence[tuple[str, int, str]]]:
    """Where a new ticket is sent: its unit's group, and a mirror to the media team.
    Spam goes to no unit; it is counted and listed on request."""

    def destinations(ticket_id: int, decision: TicketDecision) -> Sequence[tuple[str, int, str]]:
        return service.ticket_destinations(settings.routing, ticket_id, decision.account, decision.unit)

    return destinations


async def triage_pending(
    settings: Settings,
    store: Store,
    classifier: Classifier,
    *,
    now: datetime,
    batch_size: int = 64,
    destinations: Callable[[int, TicketDecision], Sequence[tuple[str, int, str]]] | None = None,
    client_for: Callable[[str], Awaitable[Any]] | None = None,
) -> list[int]:
    """Classify every stored message not yet triaged and make its ticket.

    Reads its work from the store, so messages stored by a poll that was killed
    before triage are picked up by the next run. The model runs in a worker
    thread so the bot keeps answering buttons meanwhile; the store is only
    touched from the caller's thread."""
    calendar = settings.routing.calendar()
    days = settings.routing.deadline.working_days

    def deadline_for(received: datetime) -> datetime:
        return deadline(received, days, calendar=calendar)

    made: list[int] = []
    # Before any ticket is made: a post whose waiting comments make it surge gets one card,
    # not a message per ticket (bot/surge_job.py).
    surge_job.open_new_surges(settings, store, now=now)
    surging = store.surges.open_surges()
    while batch := store.untriaged_messages(batch_size):
        predictions = await asyncio.to_thread(classifier.predict, [m.for_classifier() for m in batch])
        for message, prediction in zip(batch, predictions):
            decision = decide(message, _checked(prediction, settings, message.account), deadline_for)
            ticket_id = store.record_triage(
                message.id, prediction_json(prediction), decision, now=now, deliver_to=destinations,
                surge_id=surge_job.surge_of(surging, message.account, message.channel, message.media_id),
            )
            if ticket_id is not None:
                made.append(ticket_id)
    if surging:
        await surge_job.after_triage(settings, store, made, now=now, client_for=client_for)
    if made:
        surge_job.watch_accounts(settings, store, now=now)
    return made


def deliver_alerts(settings: Settings, store: Store, *, now: datetime) -> int:
    """System alerts (expired token, failed sends) go to the media team's group, once each."""
    alerts = store.undelivered_alerts()
    for alert in alerts:
        text = "⚠️ <b>Peringatan sistem</b>\n" + html.escape(alert["text"])
        store.enqueue(f"alert:{alert['id']}", settings.routing.media_team.chat_id, "text", now=now,
                      payload={"text": text})
        store.mark_alert_delivered(alert["id"], now)
    return len(alerts)


def _checked(prediction: Prediction, settings: Settings, account: str) -> Prediction:
    """A unit the account does not have (a stale model) goes to the default unit, not nowhere."""
    units = settings.routing.accounts[account].units
    if prediction.unit is None or prediction.unit in units:
        return prediction
    log.warning("classifier chose unknown unit %s for %s; using the default unit", prediction.unit, account)
    from dataclasses import replace

    return replace(prediction, unit=settings.routing.accounts[account].default_unit, unit_source="default")


def prediction_json(prediction: Prediction) -> dict[str, object]:
    return {
        "labels": list(prediction.labels),
        "scores": {k: round(float(v), 4) for k, v in prediction.scores.items()},
        "unit": prediction.unit,
        "unit_source": prediction.unit_source,
        "lang": prediction.lang,
        "spam_flag": bool(prediction.spam_flag),  # a classifier may hand numpy booleans, which JSON refuses
        "may_hide": bool(prediction.may_hide),
    }
