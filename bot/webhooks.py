"""Instagram webhooks: Meta pushes comments and DMs here, they are stored like polled ones.

`webhook_app()` builds the aiohttp application (`triage webhook` serves it):

- `GET /webhooks/instagram` answers Meta's verification handshake;
- `POST /webhooks/instagram` checks `X-Hub-Signature-256` over the raw body,
  turns comments and DMs into `InboundMessage`s with the same ids polling
  gives them (comment id, message `mid`), stores them, answers 200, and only
  then hands the new ids to `on_stored` (triage, waking delivery) in the background;
- `GET /healthz` answers "ok".

A message that arrives both by webhook and by polling is stored once: the
messages table is unique by Instagram id. A replay is answered 200 and
processed no further (see `ReplayGuard`): Meta resends a delivery whose 200 it
did not see, and any other answer would make it resend for 36 hours. Store
calls stay on the event loop's thread, as everywhere else: one SQLite
connection, one writer; an insert batch takes milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from bot.config import Settings
from bot.instagram import meta_id
from bot.store import Store
from bot.triage import InboundMessage

log = logging.getLogger(__name__)

PATH = "/webhooks/instagram"
SIGNATURE_HEADER = "X-Hub-Signature-256"
VERIFY_TOKEN_ENV = "INSTAGRAM_WEBHOOK_VERIFY_TOKEN"
APP_SECRET_ENV = "INSTAGRAM_APP_SECRET"
# Meta batches up to 1000 updates in one POST; aiohttp's default 1 MiB limit could refuse a big batch.
MAX_BODY = 8 * 1024 * 1024
# Meta retries a failed delivery for up to about 36 hours; remember signatures a little longer.
REPLAY_TTL = timedelta(hours=48)
REPLAY_MAX = 10_000  # ~1.5 MB of memory at most
COMMENT_FIELDS = frozenset({"comments", "live_comments"})

OnStored = Callable[[list[str]], Awaitable[None]]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Malformed(ValueError):
    """One entry, change or messaging item we cannot use; it is logged and skipped."""


# -- signatures and replays ----------------------------------------------------


def signature_problem(app_secret: str, body: bytes, header: str | None) -> str | None:
    """Why `header` is not `sha256=<hex HMAC-SHA256(app_secret, body)>`, or None when it is.

    The HMAC is computed over the bytes as received: Meta signs its own escaped
    serialisation (\\uXXXX, \\/), which re-serialising the parsed JSON would not reproduce."""
    if not header:
        return "missing"
    algorithm, _, hex_digest = header.strip().partition("=")
    if algorithm.lower() != "sha256":
        return "malformed (expected sha256=<hex>)"
    try:
        received = bytes.fromhex(hex_digest)
    except ValueError:
        return "malformed (not hex)"
    if len(received) != hashlib.sha256().digest_size:
        return "malformed (wrong length)"
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return None if hmac.compare_digest(expected, received) else "wrong"


class ReplayGuard:
    """Signatures of requests already taken, with when they were taken: bounded, in memory,
    the oldest forgotten first (so entry order is time order and expiry is a look at the front).

    Why memory and not the store: a replay can do no harm to the data anyway (the
    messages table is unique by Instagram id, so a replayed body stores nothing
    new and makes no ticket); the guard only spares the work and makes replays
    visible in the log. After a restart, or once an entry has aged out (48 h,
    past Meta's ~36 h retry window) or been pushed out by 10 000 newer ones, a
    replay is processed again and is still harmless. Keeping it in memory keeps
    SQL in store.py and adds no write per request.

    A signature is claimed before the body is stored and released if storing
    fails, so Meta's retry of a request we answered with 500 is processed."""

    def __init__(self, *, ttl: timedelta = REPLAY_TTL, max_entries: int = REPLAY_MAX) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def claim(self, signature: str, now: datetime) -> bool:
        """True the first time a signature is seen (within the TTL); False for a replay."""
        while self._seen:
            oldest_key, oldest_at = next(iter(self._seen.items()))
            if now - oldest_at < self.ttl:
                break
            del self._seen[oldest_key]
        if signature in self._seen:
            return False
        self._seen[signature] = now
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True

    def release(self, signature: str) -> None:
        self._seen.pop(signature, None)

    def __len__(self) -> int:
        return len(self._seen)


# -- payload -> InboundMessage -------------------------------------------------


def parse_payload(
    payload: Any, accounts: Mapping[str, str], *, now: datetime
) -> tuple[list[InboundMessage], list[str]]:
    """Meta's notification -> (messages, problems). `accounts` maps instagram_user_id -> account key.

    Every entry, change and messaging item is taken on its own: a bad one is
    reported in `problems` and skipped, the rest are kept."""
    if not isinstance(payload, dict):
        return [], ["the body is not a JSON object"]
    if payload.get("object") != "instagram":
        return [], [f"object is {payload.get('object')!r}, not 'instagram': is the app subscribed to the right product?"]
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return [], ["no entry list"]
    messages: list[InboundMessage] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), (str, int)):
            problems.append(f"entry[{i}]: not an object with an id")
            continue
        ig_id = str(entry["id"])
        account = accounts.get(ig_id)
        if account is None:
            problems.append(f"entry[{i}]: unknown Instagram account id {ig_id}; add it to routing.yaml or unsubscribe it")
            continue
        entry_time = _moment(entry.get("time"), now)
        for kind, items in (("changes", entry.get("changes")), ("messaging", entry.get("messaging"))):
            if items is None:
                continue
            if not isinstance(items, list):
                problems.append(f"entry[{i}].{kind}: not a list")
                continue
            for j, item in enumerate(items):
                try:
                    if kind == "changes":
                        message = _from_change(account, item, entry_time)
                    else:
                        message = _from_messaging(account, ig_id, item, now)
                except Malformed as err:
                    problems.append(f"entry[{i}].{kind}[{j}]: {err}")
                    continue
                if message is not None:
                    messages.append(message)
    return messages, problems


def _from_change(account: str, change: Any, entry_time: datetime) -> InboundMessage | None:
    """A `comments`/`live_comments` change, mapped like bot.jobs._from_comment; other fields are ignored."""
    if not isinstance(change, dict):
        raise Malformed("not an object")
    field_name = change.get("field")
    if not isinstance(field_name, str):  # a list or an object here is no field name (and is unhashable)
        raise Malformed("change without a field name")
    if field_name not in COMMENT_FIELDS:
        log.debug("webhook: ignoring change field %r", field_name)
        return None
    value = change.get("value")
    if not isinstance(value, dict):
        raise Malformed("comment change without a value object")
    comment_id = meta_id(value.get("id"))
    if comment_id is None:
        raise Malformed("comment without an id")
    text = value.get("text")
    if text is not None and not isinstance(text, str):
        raise Malformed(f"comment {comment_id}: text is not a string")
    author, media = _object(value.get("from")), _object(value.get("media"))
    return InboundMessage(
        id=comment_id, account=account, channel="comment", text=text or "", created_at=entry_time,
        author_id=meta_id(author.get("id")), author_username=author.get("username") or None,
        media_id=meta_id(media.get("id")), parent_id=meta_id(value.get("parent_id")), raw=change,
    )


def _from_messaging(account: str, ig_id: str, item: Any, now: datetime) -> InboundMessage | None:
    """A `messaging` item, mapped like bot.jobs._from_dm; echoes, deletions, our own sends,
    reactions, reads and postbacks are ignored."""
    if not isinstance(item, dict):
        raise Malformed("not an object")
    message = item.get("message")
    if message is None:
        return None  # message_reactions, messaging_seen, postbacks, referrals: nothing to triage
    if not isinstance(message, dict):
        raise Malformed("message is not an object")
    if message.get("is_echo") or message.get("is_deleted"):
        return None
    sender_id = meta_id(_object(item.get("sender")).get("id"))
    if sender_id == ig_id:
        return None  # the account's own message (an echo without the flag)
    mid = meta_id(message.get("mid"))
    if mid is None:
        raise Malformed("message without a mid")
    if sender_id is None:
        raise Malformed(f"message {mid}: no sender id")
    text = message.get("text")
    if text is not None and not isinstance(text, str):
        raise Malformed(f"message {mid}: text is not a string")
    return InboundMessage(
        id=mid, account=account, channel="dm", text=text or "", created_at=_moment(item.get("timestamp"), now),
        author_id=sender_id, conversation_id=None, raw=item,
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _moment(value: Any, default: datetime) -> datetime:
    """Meta's epoch times: seconds on comment entries, milliseconds on messaging. Anything
    above 10^11 is taken as milliseconds (10^11 seconds is the year 5138)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return default
    seconds = value / 1000 if value > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return default


# -- the application -----------------------------------------------------------


class _Webhook:
    """The handlers and what they share: settings, store, replay guard, background tasks."""

    def __init__(self, settings: Settings, store: Store, on_stored: OnStored | None, clock: Clock,
                 replays: ReplayGuard) -> None:
        self.settings, self.store, self.on_stored, self.clock, self.replays = settings, store, on_stored, clock, replays
        self.accounts = {acc.instagram_user_id: key for key, acc in settings.routing.accounts.items()}
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_stored_lock = asyncio.Lock()  # triage runs never overlap; each drains what is pending

    async def verify(self, request: web.Request) -> web.Response:
        expected = self.settings.webhook_verify_token
        if not expected:
            log.error("webhook verification refused: no verify token configured; set %s to the "
                      "token entered in Meta's App Dashboard", VERIFY_TOKEN_ENV)
            return web.Response(status=403, text="forbidden")
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        if mode != "subscribe" or not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
            log.warning("webhook verification refused: mode %r, %s", mode,
                        "no token" if not token else "token does not match " + VERIFY_TOKEN_ENV)
            return web.Response(status=403, text="forbidden")
        log.info("webhook verification accepted")
        return web.Response(text=request.query.get("hub.challenge", ""), content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        secret = self.settings.app_secret
        if not secret:
            log.error("webhook refused: no app secret configured, so signatures cannot be checked; "
                      "set %s to the Instagram app secret (App Dashboard > Instagram > API setup)", APP_SECRET_ENV)
            return web.Response(status=503, text="not configured")
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER)
        problem = signature_problem(secret, body, header)
        if problem:
            log.warning("webhook refused: %s %s signature from %s (%d bytes); check %s",
                        problem, SIGNATURE_HEADER, request.remote, len(body), APP_SECRET_ENV)
            return web.Response(status=403, text="bad signature")
        assert header is not None
        signature = header.strip().lower()
        now = self.clock()
        if not self.replays.claim(signature, now):
            # 200, not 409: this is most often Meta's own retry of a delivery whose answer it lost.
            log.warning("webhook: replay of a request already taken, not processed again (signature %s...)",
                        signature[7:19])
            return web.Response(status=200, text="already received")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError included; RecursionError: nested too deep
            why = "nested too deeply" if isinstance(err, RecursionError) else "not JSON"
            log.error("webhook: a correctly signed body is %s (%d bytes); nothing stored", why, len(body))
            return web.Response(status=400, text=why)
        messages, problems = parse_payload(payload, self.accounts, now=now)
        for text in problems:
            log.warning("webhook: skipped %s", text)
        try:
            new_ids = self.store.save_messages(messages, now=now, source="webhook") if messages else []
        except BaseException:
            self.replays.release(signature)  # Meta will retry; that retry must be processed
            raise
        log.info("webhook: %d message(s) received, %d new, %d skipped", len(messages), len(new_ids), len(problems))
        if new_ids and self.on_stored is not None:
            task = asyncio.get_running_loop().create_task(self._run_on_stored(new_ids))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.Response(text="ok")

    async def _run_on_stored(self, new_ids: list[str]) -> None:
        assert self.on_stored is not None
        try:
            async with self.on_stored_lock:
                await self.on_stored(new_ids)
        except Exception:
            log.exception("webhook: processing %d new message(s) failed; they stay untriaged in the store "
                          "and the next triage run picks them up: %s", len(new_ids), ", ".join(new_ids[:5]))

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def finish(self, app: web.Application) -> None:
        """On shutdown, let triage already started finish (its messages are stored either way)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def webhook_app(
    settings: Settings,
    store: Store,
    on_stored: OnStored | None,
    *,
    clock: Clock = _utc_now,
    replays: ReplayGuard | None = None,
) -> web.Application:
    """The webhook application. `on_stored(new_ids)` runs in the background after the 200,
    never two at once; its exceptions are logged."""
    webhook = _Webhook(settings, store, on_stored, clock, replays or ReplayGuard())
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get(PATH, webhook.verify)
    app.router.add_post(PATH, webhook.receive)
    app.router.add_get("/healthz", webhook.healthz)
    app.on_cleanup.append(webhook.finish)
    return app


async def start_webhook_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port (port 0: a free one, see `runner.addresses`); `await runner.cleanup()` stops it."""
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("webhook server listening on %s", ", ".join(f"{a[0]}:{a[1]}" for a in runner.addresses))
    return runner
