"""Instagram tokens: which one to use, and the weekly refresh that keeps them alive.

A long-lived Instagram token dies 60 days after it was made or last refreshed,
and the bot then stops polling. Meta refreshes a token that is at least 24
hours old and not yet expired. So the bot refreshes each account's token once a
week and keeps the newest in the store. The environment still holds what a
person set: when it changes (a new login), that token wins and the cycle starts
over, so a person never has to clear the store.

The store keeps refreshed tokens in plain text, as the environment does;
protect triage.db as you protect the environment.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from bot.config import Settings
from bot.instagram import InstagramClient, InstagramError, TokenInvalid
from bot.store import Store, parse_iso

log = logging.getLogger(__name__)

REFRESH_EVERY = timedelta(days=7)
MIN_AGE = timedelta(hours=24)  # Meta refuses younger tokens
ALERT_EVERY = timedelta(hours=20)  # a daily job alerts once a day, not on every retry

ClientFactory = Callable[[str, str], InstagramClient]  # (account, token) -> client


@dataclass
class RefreshReport:
    account: str
    outcome: str  # "refreshed", "not due", "failed", "no token", "stopped"
    expires_at: datetime | None = None
    error: str | None = None


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def current_token(settings: Settings, store: Store, account: str, now: datetime) -> str:
    """The token to call Instagram with: the refreshed one, unless the environment changed."""
    env_token = settings.instagram_token(account)  # raises ConfigError naming the variable when unset
    record = store.token_record(account, fingerprint(env_token), now)
    return str(record["token"] or env_token)


def refresh_due(record: dict[str, Any], now: datetime) -> bool:
    refreshed = parse_iso(record["refreshed_at"])
    if refreshed is not None:
        return now - refreshed >= REFRESH_EVERY
    first_seen = parse_iso(record["first_seen_at"])
    return first_seen is None or now - first_seen >= MIN_AGE


async def refresh_tokens(settings: Settings, store: Store, *, now: datetime,
                         client_for: ClientFactory | None = None, force: bool = False) -> list[RefreshReport]:
    """Refresh every account's token that is due (or all, with force); failures become alerts."""
    reports = []
    for account in settings.routing.accounts:
        if not settings.instagram_tokens.get(account):
            reports.append(RefreshReport(account, "no token"))
            continue
        if store.poll_state(account)[1]:  # stopped on a dead token: its alert already asked for a new one
            reports.append(RefreshReport(account, "stopped"))
            continue
        reports.append(await _refresh_one(settings, store, account, now, client_for, force))
    return reports


async def _refresh_one(settings: Settings, store: Store, account: str, now: datetime,
                       client_for: ClientFactory | None, force: bool) -> RefreshReport:
    env_token = settings.instagram_token(account)
    record = store.token_record(account, fingerprint(env_token), now)
    token = str(record["token"] or env_token)
    if not force and not refresh_due(record, now):
        return RefreshReport(account, "not due", expires_at=parse_iso(record["expires_at"]))
    acc = settings.routing.accounts[account]
    client = client_for(account, token) if client_for else InstagramClient(
        access_token=token, ig_user_id=acc.instagram_user_id, base_url=settings.instagram_graph_url)
    try:
        refreshed = await client.refresh_token()
    except InstagramError as err:
        _report_failure(store, account, acc.token_env, record, err, now)
        return RefreshReport(account, "failed", expires_at=parse_iso(record["expires_at"]), error=str(err))
    finally:
        await client.aclose()
    expires_at = now + timedelta(seconds=refreshed.expires_in)
    store.save_refreshed_token(account, refreshed.access_token, expires_at, now)
    log.info("token of %s refreshed; valid until %s", account, expires_at.isoformat())
    return RefreshReport(account, "refreshed", expires_at=expires_at)


def _report_failure(store: Store, account: str, token_env: str, record: dict[str, Any],
                    err: InstagramError, now: datetime) -> None:
    """Keep the old token (it still works for weeks) and tell the media team, once a day:
    at once when only a new login can help, otherwise once the failure has lasted a day
    (a weekly refresh has time to spare; one bad night is not worth a message)."""
    log.warning("token refresh of %s failed: %s", account, err)
    store.record_token_failure(account, str(err), now)
    failing_since = parse_iso(record["failed_at"]) or now
    needs_login = isinstance(err, TokenInvalid)
    if not needs_login and now - failing_since < ALERT_EVERY:
        return
    if store.has_recent_alert("token_refresh", account, now - ALERT_EVERY):
        return
    expires = parse_iso(record["expires_at"])
    until = f" Token saat ini berlaku sampai {expires:%d-%m-%Y}." if expires else ""
    advice = (f"Buat token baru lewat login Instagram, simpan di variabel {token_env}, lalu mulai ulang bot."
              if needs_login else "Bot akan mencoba lagi besok.")
    code = f" (kode {err.code})" if err.code is not None else ""
    store.add_alert("token_refresh", f"Token Instagram akun {account} gagal diperbarui: {err.message}{code}.{until} {advice}",
                    now=now, account=account)
