"""The Instagram Graph API client: our own dataclasses out, our own exceptions.

One long-lived `httpx.AsyncClient` per account client. Every HTTP exchange goes
through `InstagramClient._call`, which is the only place that retries, reads
the usage headers and turns Meta's error object into an `InstagramError`
subclass (see `error_from_response`). Callers never see raw JSON errors.

Meta does not promise any ordering of list results, so nothing here relies on
it: pages are followed through `paging.next` until it is absent, and callers
dedupe by id.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import certifi
import httpx

log = logging.getLogger(__name__)

GRAPH_URL: Final = "https://graph.instagram.com/v23.0"

MEDIA_FIELDS: Final = "id,caption,timestamp,comments_count,permalink"
_COMMENT_FIELDS: Final = "id,text,timestamp,username,from{id,username},hidden,parent_id"
COMMENT_FIELDS: Final = f"{_COMMENT_FIELDS},replies{{{_COMMENT_FIELDS}}}"
CONVERSATION_FIELDS: Final = "id,updated_time"
MESSAGE_FIELDS: Final = "id,created_time,from,to,message"

RATE_LIMIT_CODES: Final = frozenset({4, 17, 32, 613, 80002})
TRANSIENT_CODES: Final = frozenset({1, 2})
WINDOW_SUBCODES: Final = frozenset({2534022, 2018278})
WINDOW_MESSAGE: Final = "outside of allowed window"
MAX_DM_BYTES: Final = 1000

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


# --------------------------------------------------------------------------
# Exceptions


class InstagramError(Exception):
    """A failed Graph API call, translated from Meta's error object."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool = False,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.message} (code={self.code}, subcode={self.subcode}, fbtrace_id={self.fbtrace_id})"


class TokenInvalid(InstagramError):
    """Code 190: the token is expired, revoked or unknown. Re-authorise; never retried."""


class RateLimited(InstagramError):
    """Codes 4, 17, 32, 613, 80002. `retry_after` (seconds) comes from the BUC header when Meta sent it."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermissionDenied(InstagramError):
    """Code 10 or 200-299: missing permission. Never retried."""


class MessagingWindowClosed(InstagramError):
    """Code 10 "outside of allowed window": the 24-hour (or 7-day) messaging window has passed."""


class InvalidRequest(InstagramError):
    """Code 100: bad parameter, or the object is gone / not ours (subcode 33). Never retried."""


class TransientError(InstagramError):
    """Codes 1/2, `is_transient`, HTTP 5xx or an unparseable body: still failing after the retries."""


class InstagramUnavailable(TransientError):
    """Network errors or timeouts on every attempt."""


# --------------------------------------------------------------------------
# Our data types


@dataclass(frozen=True)
class Media:
    id: str
    caption: str | None
    timestamp: datetime
    comments_count: int
    permalink: str | None


@dataclass(frozen=True)
class Comment:
    id: str
    media_id: str
    text: str
    timestamp: datetime
    username: str | None  # needs instagram_business_manage_comments
    user_id: str | None
    parent_id: str | None  # set on replies: the top-level comment they belong to
    hidden: bool
    permalink: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Conversation:
    id: str
    updated_time: datetime  # time of the conversation's most recent message


@dataclass(frozen=True)
class DirectMessage:
    id: str
    conversation_id: str
    created_time: datetime
    sender_id: str
    sender_username: str | None
    text: str  # "" for attachments-only messages
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Profile:
    id: str
    username: str | None


@dataclass(frozen=True)
class RefreshedToken:
    access_token: str
    expires_in: float  # seconds from now; Meta answers about 60 days

    def __repr__(self) -> str:  # never show the token
        return f"RefreshedToken(expires_in={self.expires_in})"


@dataclass(frozen=True)
class SkippedItem:
    """An item Meta sent that we could not use; kept so it can be reported, not silently lost."""

    kind: str  # "media", "comment", "conversation", "message"
    reason: str
    raw: object = field(compare=False, repr=False)
    retried: bool = False  # read again next poll (a post or conversation that failed), not lost


@dataclass(frozen=True)
class Usage:
    """The latest usage percentages Meta reported (0-100; throttled at 100)."""

    app: Mapping[str, float] | None = None  # X-App-Usage
    business: Mapping[str, float] | None = None  # X-Business-Use-Case-Usage, max over entries
    regain_minutes: float | None = None  # estimated_time_to_regain_access

    @property
    def percent(self) -> float | None:
        """Highest figure reported, or None when Meta has not sent any (absent is not zero)."""
        figures = [*(self.app or {}).values(), *(self.business or {}).values()]
        return max(figures) if figures else None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 1.0  # seconds; doubled per attempt, full jitter
    max_delay: float = 60.0
    max_throttle_wait: float = 900.0  # a throttle asking for longer is raised, not slept through
    slowdown_at: float = 80.0  # usage % at which we pause before each call
    slowdown_delay: float = 2.0


# --------------------------------------------------------------------------
# Error translation: the one place Meta's error object becomes our exception


def error_from_response(status: int, body: object, headers: Mapping[str, str]) -> InstagramError:
    """Translate a failed HTTP answer (status, decoded JSON body, headers) into our exception tree."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        # No Graph envelope at all: a proxy page, an empty 5xx, garbage.
        cls = TransientError if status >= 500 or status == 200 else InstagramError
        return cls(f"HTTP {status} without a Graph error object", http_status=status)
    code = _as_int(err.get("code"))
    kwargs: dict[str, Any] = {
        "code": code,
        "subcode": _as_int(err.get("error_subcode")),
        "fbtrace_id": err.get("fbtrace_id"),
        "is_transient": bool(err.get("is_transient", False)),
        "http_status": status,
    }
    message = str(err.get("message", "unknown error"))
    if code in RATE_LIMIT_CODES:
        return RateLimited(message, retry_after=_regain_seconds(headers), **kwargs)
    return _error_class(code, kwargs["subcode"], message, kwargs["is_transient"], status)(message, **kwargs)


def _error_class(
    code: int | None, subcode: int | None, message: str, is_transient: bool, status: int
) -> type[InstagramError]:
    if code == 190:
        return TokenInvalid
    if code == 10 and (subcode in WINDOW_SUBCODES or WINDOW_MESSAGE in message.lower()):
        return MessagingWindowClosed
    if code == 10 or (code is not None and 200 <= code <= 299):
        return PermissionDenied
    if code == 100:
        return InvalidRequest
    if code in TRANSIENT_CODES or is_transient or status >= 500:
        return TransientError
    return InstagramError


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    usage = parse_usage(headers, Usage())
    return None if usage.regain_minutes is None else usage.regain_minutes * 60


def parse_usage(headers: Mapping[str, str], previous: Usage) -> Usage:
    """Read both usage headers; a header that is absent keeps its previous value (absent is not zero)."""
    app = _parse_app_usage(headers.get("x-app-usage"))
    business, regain = _parse_buc_usage(headers.get("x-business-use-case-usage"))
    if business is None:
        return Usage(app=app or previous.app, business=previous.business, regain_minutes=previous.regain_minutes)
    return Usage(app=app or previous.app, business=business, regain_minutes=regain)


def _parse_app_usage(raw: str | None) -> dict[str, float] | None:
    data = _loads_or_none(raw)
    if not isinstance(data, dict):
        return None
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}


def _parse_buc_usage(raw: str | None) -> tuple[dict[str, float] | None, float | None]:
    data = _loads_or_none(raw)
    if not isinstance(data, dict):
        return None, None
    figures: dict[str, float] = {}
    regain: float | None = None
    for entry in (e for entries in data.values() if isinstance(entries, list) for e in entries):
        if not isinstance(entry, dict):
            continue
        for key in ("call_count", "total_cputime", "total_time"):
            if isinstance(entry.get(key), (int, float)):
                figures[key] = max(figures.get(key, 0.0), float(entry[key]))
        if isinstance(entry.get("estimated_time_to_regain_access"), (int, float)):
            regain = max(regain or 0.0, float(entry["estimated_time_to_regain_access"]))
    return figures, regain


def _loads_or_none(raw: str | None) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------
# Item parsing: a bad item is skipped, never the whole page


class _BadItem(ValueError):
    pass


def parse_time(value: object) -> datetime:
    """Meta's ISO-8601 with "+0000" offsets -> aware datetime in UTC. A value that parses but
    names no moment in UTC ("9999-12-31T23:59:59-2359") is a bad item here, not an
    OverflowError in whatever job later compares or stores it."""
    if not isinstance(value, str):
        raise _BadItem(f"timestamp is not a string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadItem(f"bad timestamp {value!r}") from exc
    if parsed.tzinfo is None:
        raise _BadItem(f"timestamp without offset {value!r}")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError as exc:
        raise _BadItem(f"timestamp outside the calendar {value!r}") from exc


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _item_id(item: Mapping[str, Any], key: str) -> str:
    """An id: Meta sends strings, but a number is the same id (as the webhook parser reads it)."""
    value = meta_id(item.get(key))
    if value is None:
        raise _BadItem(f"missing {key}")
    return value


def meta_id(value: object) -> str | None:
    """An id as Meta's APIs and webhooks send it (a string, or a number), as text; None for none."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    return str(value)


def _as_mapping(item: object) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise _BadItem(f"item is not an object: {type(item).__name__}")
    return item


def parse_media(item: object) -> Media:
    m = _as_mapping(item)
    count = m.get("comments_count")
    if not isinstance(count, int) or isinstance(count, bool):
        raise _BadItem("missing comments_count")
    return Media(
        id=_item_id(m, "id"),
        caption=_optional_str(m.get("caption")),
        timestamp=parse_time(m.get("timestamp")),
        comments_count=count,
        permalink=_optional_str(m.get("permalink")),
    )


def parse_comment(item: object, media_id: str, parent_id: str | None = None) -> Comment:
    c = _as_mapping(item)
    raw_sender = c.get("from")
    sender: Mapping[str, Any] = raw_sender if isinstance(raw_sender, dict) else {}
    text = c.get("text")
    if not isinstance(text, str):
        raise _BadItem("missing text")
    return Comment(
        id=_item_id(c, "id"),
        media_id=media_id,
        text=text,
        timestamp=parse_time(c.get("timestamp")),
        username=_optional_str(c.get("username")) or _optional_str(sender.get("username")),
        user_id=meta_id(sender.get("id")),
        parent_id=meta_id(c.get("parent_id")) or parent_id,
        hidden=c.get("hidden") is True,  # Meta sends a boolean; "false" (a string) is not hidden
        permalink=_optional_str(c.get("permalink")),
        raw=c,
    )


def parse_conversation(item: object) -> Conversation:
    c = _as_mapping(item)
    return Conversation(id=_item_id(c, "id"), updated_time=parse_time(c.get("updated_time")))


def parse_message(item: object, conversation_id: str) -> DirectMessage:
    m = _as_mapping(item)
    sender = m.get("from")
    if not isinstance(sender, dict):
        # Only the 20 most recent messages of a conversation carry details.
        raise _BadItem("no sender (message details unavailable)")
    text = m.get("message", "")
    return DirectMessage(
        id=_item_id(m, "id"),
        conversation_id=conversation_id,
        created_time=parse_time(m.get("created_time")),
        sender_id=_item_id(sender, "id"),
        sender_username=_optional_str(sender.get("username")),
        text=text if isinstance(text, str) else "",
        raw=m,
    )


def _strip_token(url: str) -> str:
    """Drop access_token from a `paging.next` URL: we send the token as a header, and httpx logs URLs."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


# --------------------------------------------------------------------------
# The client


class InstagramClient:
    """Async client for one Instagram professional account.

    Use as `async with InstagramClient(...) as client:` or call `aclose()`.
    `ig_user_id` is the account node used in paths (the IG user id, or the
    Page id with Facebook Login), so host and node stay configurable.
    """

    def __init__(
        self,
        *,
        access_token: str,
        ig_user_id: str,
        base_url: str = GRAPH_URL,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._token = access_token
        self.ig_user_id = ig_user_id
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, verify=_ssl_context())
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.calls = 0  # HTTP requests sent, retries included: what Meta counts
        self.usage = Usage()
        self.skipped: deque[SkippedItem] = deque(maxlen=1000)
        self.skipped_total = 0  # grows forever, so callers can slice off what one job skipped

    def __repr__(self) -> str:
        # Never show the token.
        return f"InstagramClient(ig_user_id={self.ig_user_id!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> InstagramClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ---- reading -------------------------------------------------------

    async def whoami(self) -> Profile:
        """GET /me. Accepts a plain object or {"data": [{...}]} (both shapes are seen)."""
        body = await self._call("GET", "/me", params={"fields": "user_id,username"})
        data = body.get("data")
        obj = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else body
        ident = obj.get("user_id") or obj.get("id")
        if not isinstance(ident, (str, int)):
            raise TransientError("GET /me answered without an id")
        return Profile(id=str(ident), username=_optional_str(obj.get("username")))

    async def list_media(self, limit: int = 25) -> list[Media]:
        """The account's most recent media, up to `limit` items."""
        params = {"fields": MEDIA_FIELDS, "limit": str(min(limit, 100))}
        media: list[Media] = []
        async for page in self._pages(f"/{self.ig_user_id}/media", params):
            media += self._parse_items(page, "media", parse_media)
            if len(media) >= limit:
                break
        return media[:limit]

    async def media(self, media_id: str) -> Media:
        """One post: its caption and link (for the surge card)."""
        body = await self._call("GET", f"/{media_id}", params={"fields": MEDIA_FIELDS})
        try:
            return parse_media(body)
        except _BadItem as exc:
            raise TransientError(f"GET /{media_id} answered without a post: {exc}") from None

    async def replies(self, comment_id: str) -> list[Comment]:
        """The replies under a top-level comment (to see whether our own reply is already there)."""
        found: list[Comment] = []
        params = {"fields": "id,text,timestamp,username,from{id,username},parent_id", "limit": "50"}
        async for page in self._pages(f"/{comment_id}/replies", params):
            found += self._parse_items(page, "comment", lambda r: parse_comment(r, "", comment_id))
        return found

    async def iter_comments(self, media_id: str, *, page_size: int = 50) -> AsyncIterator[list[Comment]]:
        """Pages of a media's top-level comments, each followed by its replies (flattened, parent_id set)."""
        params = {"fields": COMMENT_FIELDS, "limit": str(page_size)}
        async for page in self._pages(f"/{media_id}/comments", params):
            comments: list[Comment] = []
            for item in _page_data(page):
                comments += await self._comment_with_replies(item, media_id)
            yield comments

    async def iter_conversations(self, *, page_size: int = 25) -> AsyncIterator[list[Conversation]]:
        """Pages of conversations, which Meta lists most recently updated first."""
        params = {"platform": "instagram", "fields": CONVERSATION_FIELDS, "limit": str(page_size)}
        async for page in self._pages(f"/{self.ig_user_id}/conversations", params):
            yield self._parse_items(page, "conversation", parse_conversation)

    async def list_conversations(self, limit: int = 25) -> list[Conversation]:
        found: list[Conversation] = []
        async for page in self.iter_conversations(page_size=min(limit, 100)):
            found += page
            if len(found) >= limit:
                break
        return found[:limit]

    async def iter_messages(self, conversation_id: str) -> AsyncIterator[list[DirectMessage]]:
        """Pages of a conversation's messages (newest first; only the 20 newest carry details)."""
        body = await self._call("GET", f"/{conversation_id}", params={"fields": f"messages{{{MESSAGE_FIELDS}}}"})
        messages = body.get("messages")
        first: dict[str, Any] = messages if isinstance(messages, dict) else {"data": []}
        async for page in self._follow(first):
            yield self._parse_items(page, "message", lambda item: parse_message(item, conversation_id))

    async def conversation_messages(self, conversation_id: str, limit: int = 20) -> list[DirectMessage]:
        found: list[DirectMessage] = []
        async for page in self.iter_messages(conversation_id):
            found += page
            if len(found) >= limit:
                break
        return found[:limit]

    # ---- acting --------------------------------------------------------

    async def reply_to_comment(self, comment_id: str, text: str) -> str:
        """Public reply; returns the new comment id. Replies to replies join the top-level thread."""
        body = await self._call("POST", f"/{comment_id}/replies", params={"message": text})
        return _require_id(body, "id")

    async def send_dm(self, recipient_id: str, text: str, *, human_agent: bool = False) -> str:
        """Send a DM to an IGSID; returns the message id. `human_agent` stretches the window to 7 days."""
        payload: dict[str, Any] = {"recipient": {"id": recipient_id}, "message": {"text": _checked_dm(text)}}
        if human_agent:
            payload |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        body = await self._call("POST", f"/{self.ig_user_id}/messages", json_body=payload)
        return _require_id(body, "message_id")

    async def private_reply(self, comment_id: str, text: str) -> str:
        """DM the author of a comment (once per comment, within 7 days); returns the message id."""
        payload = {"recipient": {"comment_id": comment_id}, "message": {"text": _checked_dm(text)}}
        body = await self._call("POST", f"/{self.ig_user_id}/messages", json_body=payload)
        return _require_id(body, "message_id")

    async def hide_comment(self, comment_id: str, hidden: bool = True) -> bool:
        body = await self._call("POST", f"/{comment_id}", params={"hide": "true" if hidden else "false"})
        return body.get("success") is True

    # ---- the token ------------------------------------------------------

    async def refresh_token(self) -> RefreshedToken:
        """GET /refresh_access_token: a long-lived token (at least 24 h old, unexpired)
        becomes one valid 60 days from now. Meta may answer the same string or a new one.
        The endpoint has no version in Meta's reference, so the version is dropped from the path."""
        body = await self._call("GET", _unversioned(self.base_url) + "/refresh_access_token",
                                params={"grant_type": "ig_refresh_token", "access_token": self._token})
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            raise InstagramError("refresh_access_token answered without access_token and expires_in")
        return RefreshedToken(token, float(expires_in))

    # ---- paging --------------------------------------------------------

    async def _pages(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        first = await self._call("GET", path, params=params)
        async for page in self._follow(first):
            yield page

    async def _follow(self, page: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield `page` and every page after it, until `paging.next` is absent."""
        seen: set[str] = set()
        while True:
            yield page
            next_url = self._next_url(page)
            if next_url is None or next_url in seen:
                return
            seen.add(next_url)  # a server looping on one cursor must not loop us forever
            page = await self._call("GET", next_url)

    def _next_url(self, page: Mapping[str, Any]) -> str | None:
        paging = page.get("paging")
        url = paging.get("next") if isinstance(paging, dict) else None
        if not isinstance(url, str) or not url:
            return None
        if urlsplit(url)[:2] != urlsplit(self.base_url)[:2]:
            # Never send our bearer token to another origin.
            log.warning("ignoring paging.next on a foreign origin %s", urlsplit(url).netloc)
            return None
        return _strip_token(url)

    async def _comment_with_replies(self, item: object, media_id: str) -> list[Comment]:
        try:
            top = parse_comment(item, media_id)
        except _BadItem as exc:
            self._skip("comment", str(exc), item)
            return []
        replies = item.get("replies") if isinstance(item, dict) else None
        if not isinstance(replies, dict):
            return [top]
        found = [top]
        async for page in self._follow(replies):
            found += self._parse_items(page, "comment", lambda r: parse_comment(r, media_id, top.id))
        return found

    def _parse_items(self, page: Mapping[str, Any], kind: str, parse: Callable[[object], T]) -> list[T]:
        items: list[T] = []
        for item in _page_data(page):
            try:
                items.append(parse(item))
            except _BadItem as exc:
                self._skip(kind, str(exc), item)
        return items

    def _skip(self, kind: str, reason: str, raw: object) -> None:
        ident = raw.get("id") if isinstance(raw, dict) else None
        log.warning("skipping malformed %s %s: %s", kind, ident, self._redact(reason))
        self.skipped.append(SkippedItem(kind=kind, reason=reason, raw=raw))
        self.skipped_total += 1

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    # ---- one HTTP exchange, with retries ---------------------------------

    async def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        attempt = 0
        while True:
            attempt += 1
            await self._slow_down_if_busy()
            try:
                return await self._attempt(method, url, params, json_body)
            except httpx.RequestError as exc:
                delay = self._network_retry_delay(exc, method, attempt)
                if delay is None:
                    raise InstagramUnavailable(f"{type(exc).__name__} on {method} after {attempt} attempt(s)") from exc
            except InstagramError as exc:
                delay = self._error_retry_delay(exc, method, attempt)
                if delay is None:
                    raise
            log.info("retrying %s %s in %.2fs (attempt %d)", method, urlsplit(url).path, delay, attempt)
            await self._sleep(delay)

    async def _attempt(
        self, method: str, url: str, params: Mapping[str, str] | None, json_body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        self.calls += 1
        response = await self._http.request(
            method,
            url,
            params=params,
            json=json_body,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=self._timeout,
        )
        self.usage = parse_usage(response.headers, self.usage)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or "error" in body:
            raise error_from_response(response.status_code, body, response.headers)
        return body

    def _backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): uniform in [0, capped exponential].
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    def _network_retry_delay(self, exc: httpx.RequestError, method: str, attempt: int) -> float | None:
        if attempt >= self.retry.max_attempts:
            return None
        # A POST that may have reached Meta (read timeout, dropped connection) could
        # post a reply twice; retry it only when the request surely never left.
        never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        return self._backoff(attempt) if method == "GET" or never_sent else None

    def _error_retry_delay(self, exc: InstagramError, method: str, attempt: int) -> float | None:
        if attempt >= self.retry.max_attempts:
            return None
        if isinstance(exc, RateLimited):
            wait = max(exc.retry_after or 0.0, self._backoff(attempt))
            return wait if wait <= self.retry.max_throttle_wait else None
        if not isinstance(exc, TransientError):
            return None  # 10, 100, 190, 200-299 and unknown codes: retrying cannot help
        # Without a Graph error object a failed POST may still have been done
        # (bare 5xx, garbage 200); only an error object says Meta refused it.
        if method != "GET" and exc.code is None:
            return None
        return self._backoff(attempt)

    async def _slow_down_if_busy(self) -> None:
        percent = self.usage.percent
        if percent is not None and percent >= self.retry.slowdown_at:
            # Near the limit: spacing calls out is cheaper than a throttle lasting minutes.
            await self._sleep(self.retry.slowdown_delay)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~70 ms; share one context between account clients.
    return ssl.create_default_context(cafile=certifi.where())


def _unversioned(base_url: str) -> str:
    """https://graph.instagram.com/v23.0 -> https://graph.instagram.com"""
    head, _, last = base_url.rstrip("/").rpartition("/")
    return head if re.fullmatch(r"v\d+(\.\d+)?", last) and "://" in head else base_url.rstrip("/")


def _page_data(page: Mapping[str, Any]) -> list[object]:
    data = page.get("data")
    return data if isinstance(data, list) else []


def _require_id(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, (str, int)):
        raise InstagramError(f"answer without {key}")
    return str(value)


def _checked_dm(text: str) -> str:
    if not text.strip():
        raise ValueError("empty message")
    if len(text.encode()) > MAX_DM_BYTES:
        raise ValueError(f"message longer than {MAX_DM_BYTES} bytes")
    return text

