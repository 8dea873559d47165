"""A fake Instagram Graph API: a real HTTP server on 127.0.0.1 for end-to-end tests.

The client under test is pointed at `FakeInstagram().url` and cannot tell it
from graph.instagram.com: same paths, JSON shapes, cursor pagination with
absolute `paging.next` URLs, error envelope, usage headers. Tests steer it
through plain, thread-safe Python methods (add_media, add_comment, add_dm,
inject_error, set_rate_limit, set_clock, ...); the server runs in a background
thread with its own event loop so synchronous test code can seed data while
async client code talks HTTP.

Where Meta's behaviour is not documented the fake picks the shape reported by
open-source clients (see /work/shared/API-NOTES.md, part A).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

VERSION = "v23.0"
TIME_FMT = "%Y-%m-%dT%H:%M:%S+0000"
DM_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
DETAILED_MESSAGES = 20  # only the newest 20 messages of a conversation have details
WINDOW_MESSAGE = "This message is sent outside of allowed window."
MISSING_OBJECT = (
    "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due to "
    "missing permissions, or does not support this operation."
)

T = TypeVar("T")
Fields = dict[str, "FieldSpec"]


@dataclass(frozen=True)
class FieldSpec:
    """One requested field: nested sub-fields for `from{...}` / `replies{...}`, and `.limit(n)`."""

    sub: Fields | None = None
    limit: int | None = None


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # e.g. "/v23.0/17841400000000001/media"
    params: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class SentReply:
    comment_id: str
    text: str
    new_id: str


@dataclass(frozen=True)
class SentDM:
    recipient_id: str
    text: str
    message_id: str
    comment_id: str | None = None  # set for private replies
    tag: str | None = None


@dataclass
class _Account:
    ig_id: str
    username: str


@dataclass
class _Media:
    id: str
    owner: str
    caption: str
    timestamp: datetime
    media_type: str = "IMAGE"
    media_product_type: str = "FEED"

    @property
    def permalink(self) -> str:
        return f"https://www.instagram.com/p/{self.id[-8:]}/"


@dataclass
class _Comment:
    id: str
    media_id: str
    text: str
    username: str
    user_id: str
    timestamp: datetime
    parent_id: str | None = None
    hidden: bool = False
    restricted: bool = False  # counted in comments_count but never listed, like Meta's restricted users
    private_replied: bool = False


@dataclass
class _Message:
    id: str
    conversation_id: str
    sender_id: str
    sender_username: str
    recipient_id: str
    recipient_username: str
    text: str
    created_time: datetime


@dataclass
class _Conversation:
    id: str
    owner: str
    user_id: str
    username: str
    messages: list[_Message] = field(default_factory=list)  # oldest first

    @property
    def updated_time(self) -> datetime:
        return max(m.created_time for m in self.messages)


@dataclass
class _Fault:
    path: str
    method: str | None
    times: int
    code: int | None = None
    subcode: int | None = None
    http_status: int | None = None
    message: str | None = None
    is_transient: bool | None = None
    malformed_body: bool = False
    malformed_item: str | None = None  # "missing_id" | "bad_timestamp" | "unreachable_timestamp" | "not_object"
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.path in path and self.method in (None, method)


@dataclass
class _RateLimit:
    limit: int
    window: timedelta
    code: int
    regain_minutes: int
    started: datetime
    count: int = 0


class FakeSleep:
    """Stands in for asyncio.sleep in the client: records delays and moves the fake's clock instead of waiting."""

    def __init__(self, fake: FakeInstagram | None = None) -> None:
        self.fake = fake
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.fake is not None:
            self.fake.advance(seconds)
        await asyncio.sleep(0)


class GraphError(Exception):
    """Raised inside handlers; becomes Meta's error envelope."""

    def __init__(
        self, code: int, message: str, *, subcode: int | None = None, status: int = 400, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.subcode, self.status, self.transient = code, message, subcode, status, transient


class FakeInstagram:
    """The fake server. `with FakeInstagram() as fake:` starts it; `fake.url` is the versioned base URL."""

    def __init__(self, *, version: str = VERSION) -> None:
        self.version = version
        self.replies_page_size = 25  # embedded replies{} page size (Meta's nested default)
        self.me_as_list = False  # answer /me as {"data": [{...}]}, as one open-source fake claims Meta does
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, str] = {}  # token -> ig id
        self._expired: set[str] = set()
        self._issued: dict[str, datetime] = {}  # token -> when it was made; absent: long ago
        self.refreshes: list[str] = []  # tokens handed out by /refresh_access_token
        self._media: dict[str, _Media] = {}
        self._comments: dict[str, _Comment] = {}
        # Indexes so that a page costs its own size, not the whole store's (benchmarks seed 10k+).
        self._by_media: dict[str, dict[str, None]] = {}
        self._children: dict[str, dict[str, None]] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._user_ids: dict[str, str] = {}  # commenter username -> IGSID
        self._faults: list[_Fault] = []
        self._rate_limit: _RateLimit | None = None
        self._forced_usage: dict[str, int] = {}
        self._clock: datetime | None = None
        self._counter = 0
        self._calls: list[Call] = []
        self._sent_replies: list[SentReply] = []
        self._sent_dms: list[SentDM] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None

    # ---- lifecycle -----------------------------------------------------

    @property
    def url(self) -> str:
        if self._sock is None:
            raise RuntimeError("FakeInstagram is not started")
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/{self.version}"

    def start(self) -> FakeInstagram:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # a free port chosen by the OS
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fake-instagram", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Instagram server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeInstagram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._startup())
        ready.set()
        self._loop.run_forever()

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that timed out should not keep a slow handler alive.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True)
        await self._runner.setup()
        assert self._sock is not None
        await web.SockSite(self._runner, self._sock).start()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._sock is not None:
            self._sock.close()

    # ---- controls: data --------------------------------------------------

    def add_account(self, ig_id: str, username: str, token: str) -> str:
        with self._lock:
            self._accounts[ig_id] = _Account(ig_id, username)
            self._tokens[token] = ig_id
            return ig_id

    def add_token(self, ig_id: str, token: str, *, issued_at: datetime | None = None) -> None:
        """Another token for the account; `issued_at` makes it that young (refreshable 24 h later)."""
        with self._lock:
            self._tokens[token] = ig_id
            if issued_at is not None:
                self._issued[token] = issued_at

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._expired.add(token)

    def add_media(
        self,
        account: str | None = None,
        *,
        caption: str = "",
        timestamp: datetime | None = None,
        media_id: str | None = None,
        media_type: str = "IMAGE",
    ) -> str:
        with self._lock:
            owner = self._account_id(account)
            mid = media_id or self._new_id("179")
            self._media[mid] = _Media(mid, owner, caption, self._at(timestamp), media_type)
            return mid

    def add_comment(
        self,
        media_id: str,
        text: str,
        username: str,
        *,
        timestamp: datetime | None = None,
        parent_id: str | None = None,
        user_id: str | None = None,
        hidden: bool = False,
        restricted: bool = False,
    ) -> str:
        with self._lock:
            if media_id not in self._media:
                raise KeyError(media_id)
            if parent_id is not None and self._comments[parent_id].parent_id is not None:
                parent_id = self._comments[parent_id].parent_id  # threads are one level deep
            cid = self._new_id("178")
            uid = user_id or self._user_id(username)
            self._comments[cid] = _Comment(
                cid, media_id, text, username, uid, self._at(timestamp), parent_id, hidden, restricted
            )
            self._by_media.setdefault(media_id, {})[cid] = None
            if parent_id is not None:
                self._children.setdefault(parent_id, {})[cid] = None
            return cid

    def delete_comment(self, comment_id: str) -> None:
        with self._lock:
            self._delete_comment(comment_id)

    def add_dm(
        self,
        from_user: str,
        text: str,
        *,
        account: str | None = None,
        timestamp: datetime | None = None,
        user_id: str | None = None,
        outgoing: bool = False,
    ) -> tuple[str, str]:
        """A DM between `from_user` and the account (`outgoing=True`: the account wrote it). -> (conv id, msg id)."""
        with self._lock:
            acc = self._accounts[self._account_id(account)]
            uid = user_id or self._user_id(from_user)
            conv = self._conversation_with(acc, uid, from_user)
            msg = self._append_message(conv, acc, text, self._at(timestamp), outgoing=outgoing)
            return conv.id, msg.id

    def has_comment(self, comment_id: str) -> bool:
        with self._lock:
            return comment_id in self._comments

    def comments_count(self, media_id: str) -> int:
        with self._lock:
            return self._count_comments(media_id)

    def user_id(self, username: str) -> str:
        with self._lock:
            return self._user_id(username)

    # ---- controls: behaviour ---------------------------------------------

    def inject_error(
        self,
        path: str = "",
        *,
        method: str | None = None,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        message: str | None = None,
        is_transient: bool | None = None,
        malformed_body: bool = False,
        malformed_item: bool | str = False,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """The next `times` requests whose path contains `path` (and method matches) misbehave.

        `code` and/or `http_status` answer Meta's error envelope (5xx defaults to code 2);
        `malformed_body` answers truncated JSON (status `http_status` or 200); `malformed_item` corrupts the
        first item of `data` ("missing_id", "bad_timestamp", "unreachable_timestamp" or "not_object");
        `delay` holds the answer that many seconds (client timeouts).
        """
        item = "missing_id" if malformed_item is True else (malformed_item or None)
        with self._lock:
            self._faults.append(
                _Fault(path, method, times, code, subcode, http_status, message, is_transient,
                       malformed_body, item, delay)
            )

    def clear_errors(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_rate_limit(
        self, limit: int | None, *, window_seconds: float = 3600, code: int = 80002, regain_minutes: int = 1
    ) -> None:
        """Throttle after `limit` calls per window of the fake clock (`code` 80002, 4 or 613); None lifts it."""
        with self._lock:
            self._rate_limit = (
                None if limit is None
                else _RateLimit(limit, timedelta(seconds=window_seconds), code, regain_minutes, self._now())
            )

    def set_usage(self, *, app: int | None = None, business: int | None = None) -> None:
        """Force the percentages the usage headers report (None stops forcing that header)."""
        with self._lock:
            for name, value in (("app", app), ("business", business)):
                if value is None:
                    self._forced_usage.pop(name, None)
                else:
                    self._forced_usage[name] = value

    def set_clock(self, now: datetime) -> None:
        with self._lock:
            self._clock = now.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._clock = self._now() + timedelta(seconds=seconds)

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def comment_hidden(self, comment_id: str) -> bool:
        """Whether the account has hidden this comment (POST /{comment}?hide=true)."""
        with self._lock:
            return self._comments[comment_id].hidden

    @property
    def sent_replies(self) -> list[SentReply]:
        """Public replies the client posted."""
        with self._lock:
            return list(self._sent_replies)

    @property
    def sent_dms(self) -> list[SentDM]:
        """DMs and private replies the client sent."""
        with self._lock:
            return list(self._sent_dms)

    # ---- HTTP entry point --------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = {k: v for k, v in request.query.items()}
        body = await _read_body(request)
        with self._lock:
            self._calls.append(Call(request.method, request.path, params, body))
            fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        with self._lock:
            return self._answer(request, params, body, fault)

    def _answer(
        self, request: web.Request, params: dict[str, str], body: Any, fault: _Fault | None
    ) -> web.Response:
        account: _Account | None = None
        try:
            account = self._authenticate(request, params)
            self._check_rate_limit()
            if fault is not None and fault.malformed_body:
                return web.Response(text='{"data": [{"id": "1789', content_type="application/json",
                                    status=fault.http_status or 200, headers=self._usage_headers(account))
            if fault is not None and (fault.code is not None or fault.http_status is not None):
                raise _fault_error(fault)
            token = _token_of(request, params)
            ctx = _Ctx(account, params, body, request.method, f"{request.scheme}://{request.host}", token)
            result = self._dispatch(request.path, ctx)
        except GraphError as err:
            return self._error_response(err, account)
        if fault is not None and fault.malformed_item:
            _corrupt_first_item(result, fault.malformed_item)
        return web.json_response(result, headers=self._usage_headers(account))

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, request: web.Request, params: Mapping[str, str]) -> _Account:
        token = _token_of(request, params)
        if token is None:
            raise GraphError(2500, "An active access token must be used to query information about the current user.")
        if token not in self._tokens:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        if token in self._expired:
            when = self._now().strftime("%A, %d-%b-%y %H:%M:%S UTC")
            raise GraphError(190, f"Error validating access token: Session has expired on {when}.", subcode=463)
        return self._accounts[self._tokens[token]]

    def _check_rate_limit(self) -> None:
        rl = self._rate_limit
        if rl is None:
            return
        if self._now() - rl.started >= rl.window:
            rl.started, rl.count = self._now(), 0
        rl.count += 1
        if rl.count > rl.limit:
            raise GraphError(rl.code, _THROTTLE_MESSAGES.get(rl.code, "Rate limit reached"))

    def _error_response(self, err: GraphError, account: _Account | None) -> web.Response:
        error: dict[str, Any] = {"message": err.message, "type": "OAuthException", "code": err.code}
        if err.subcode is not None:
            error["error_subcode"] = err.subcode
        error["is_transient"] = err.transient
        error["fbtrace_id"] = secrets.token_urlsafe(8)
        return web.json_response({"error": error}, status=err.status, headers=self._usage_headers(account))

    def _usage_headers(self, account: _Account | None) -> dict[str, str]:
        """Both usage headers, only once a limit or forced figures exist (Meta omits them early on)."""
        rl = self._rate_limit
        pct = None if rl is None else min(100, round(100 * rl.count / max(rl.limit, 1)))
        app = self._forced_usage.get("app", pct)
        business = self._forced_usage.get("business", pct)
        headers: dict[str, str] = {}
        if app is not None:
            headers["X-App-Usage"] = json.dumps({"call_count": app, "total_cputime": app // 4, "total_time": app // 3})
        if business is not None and account is not None:
            throttled = rl is not None and rl.count > rl.limit and rl.code == 80002
            entry = {"type": "instagram", "call_count": business, "total_cputime": business // 4,
                     "total_time": business // 3, "estimated_time_to_regain_access": rl.regain_minutes if (
                         throttled and rl is not None) else 0}
            headers["X-Business-Use-Case-Usage"] = json.dumps({account.ig_id: [entry]})
        return headers

    # ---- routing -------------------------------------------------------

    def _dispatch(self, path: str, ctx: _Ctx) -> dict[str, Any]:
        parts = [p for p in path.split("/") if p]
        if parts in (["refresh_access_token"], [self.version, "refresh_access_token"]) and ctx.method == "GET":
            return self._refresh_token(ctx)
        if len(parts) < 2 or parts[0] != self.version or len(parts) > 3:
            raise GraphError(100, f"Unknown path components: {path}")
        node, edge = parts[1], (parts[2] if len(parts) == 3 else None)
        handler = _ROUTES.get((ctx.method, edge)) if edge else _NODE_ROUTES.get(ctx.method)
        if handler is None:
            raise GraphError(100, f"Unsupported {ctx.method.lower()} request.")
        return handler(self, node, ctx)

    # GET /refresh_access_token?grant_type=ig_refresh_token&access_token=...
    def _refresh_token(self, ctx: _Ctx) -> dict[str, Any]:
        if ctx.params.get("grant_type") != "ig_refresh_token":
            raise GraphError(100, "Unsupported grant_type: use ig_refresh_token")
        assert ctx.token is not None  # authenticated already
        issued = self._issued.get(ctx.token)
        if issued is not None and self._now() - issued < timedelta(hours=24):
            # Meta refuses tokens younger than 24 h; its exact error is not documented.
            raise GraphError(190, "Error validating access token: the token must be at least 24 hours old to be refreshed")
        new = f"IGAA{secrets.token_hex(24)}"  # the old token stays valid until it expires, as at Meta
        self._tokens[new] = ctx.account.ig_id
        self._issued[new] = self._now()
        self.refreshes.append(new)
        return {"access_token": new, "token_type": "bearer", "expires_in": 5_183_944}

    # GET /me, /{ig-id}, /{media}, /{comment}, /{conversation}, /{message}
    def _get_node(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        fields = parse_fields(ctx.params.get("fields", ""))
        if node in ("me", ctx.account.ig_id):
            acc = ctx.account
            me = _select({"id": acc.ig_id, "user_id": acc.ig_id, "username": acc.username}, fields)
            return {"data": [me]} if self.me_as_list and node == "me" else me
        if node in self._media and self._media[node].owner == ctx.account.ig_id:
            return self._media_json(self._media[node], fields)
        if node in self._comments and self._owns_comment(ctx.account, self._comments[node]):
            return self._comment_json(self._comments[node], fields, ctx)
        if node in self._conversations and self._conversations[node].owner == ctx.account.ig_id:
            return self._conversation_json(self._conversations[node], fields, ctx)
        message = self._find_message(ctx.account, node)
        if message is not None:
            return self._message_detail(message, fields)
        raise _missing(node, "get")

    def _get_media(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        acc = self._node_account(node, ctx)
        media = sorted((m for m in self._media.values() if m.owner == acc.ig_id), key=_media_key, reverse=True)
        fields = parse_fields(ctx.params.get("fields", "")) or {"id": FieldSpec()}
        return self._paged(media, _media_key, ctx, node, "media", lambda m: self._media_json(m, fields),
                           default=25, maximum=100)

    def _get_comments(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        media = self._media.get(node)
        if media is None or media.owner != ctx.account.ig_id:
            raise _missing(node, "get")
        top = sorted((c for c in self._comments_of(node) if c.parent_id is None), key=_comment_key, reverse=True)
        fields = parse_fields(ctx.params.get("fields", "")) or _DEFAULT_COMMENT_FIELDS
        return self._paged(top, _comment_key, ctx, node, "comments", lambda c: self._comment_json(c, fields, ctx),
                           default=25, maximum=50, visible=lambda c: not c.restricted)

    def _get_replies(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        parent = self._comments.get(node)
        if parent is None or not self._owns_comment(ctx.account, parent):
            raise _missing(node, "get")
        fields = parse_fields(ctx.params.get("fields", "")) or _DEFAULT_COMMENT_FIELDS
        return self._replies_page(parent, fields, ctx, ctx.params, default=25)

    def _get_conversations(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        acc = self._node_account(node, ctx)
        if ctx.params.get("platform") != "instagram":
            raise GraphError(100, "(#100) Param platform must be one of {MESSENGER, INSTAGRAM}")
        convs = [c for c in self._conversations.values() if c.owner == acc.ig_id]
        if "user_id" in ctx.params:
            convs = [c for c in convs if c.user_id == ctx.params["user_id"]]
        convs.sort(key=_conversation_key, reverse=True)
        fields = parse_fields(ctx.params.get("fields", "")) or {"id": FieldSpec()}
        return self._paged(convs, _conversation_key, ctx, node, "conversations",
                           lambda c: self._conversation_json(c, fields, ctx), default=25, maximum=100)

    def _get_messages(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        conv = self._conversations.get(node)
        if conv is None or conv.owner != ctx.account.ig_id:
            raise _missing(node, "get")
        fields = parse_fields(ctx.params.get("fields", "")) or {"id": FieldSpec(), "created_time": FieldSpec()}
        return self._messages_page(conv, fields, ctx, ctx.params)

    # POST /{comment}/replies?message=...
    def _post_reply(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        target = self._comments.get(node)
        if target is None or not self._owns_comment(ctx.account, target):
            raise _missing(node, "post")
        text = ctx.params.get("message") or (ctx.body or {}).get("message")
        if not text:
            raise GraphError(100, "(#100) The parameter message is required")
        if target.hidden:
            raise GraphError(100, "(#100) Cannot reply to a hidden comment")
        acc = ctx.account
        new_id = self.add_comment(target.media_id, text, acc.username, user_id=acc.ig_id,
                                  parent_id=target.parent_id or target.id)
        self._sent_replies.append(SentReply(node, text, new_id))
        return {"id": new_id}

    # POST /{comment}?hide=true|false
    def _post_node(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        comment = self._comments.get(node)
        if comment is None or not self._owns_comment(ctx.account, comment):
            raise _missing(node, "post")
        hide = ctx.params.get("hide") or str((ctx.body or {}).get("hide", ""))
        if hide.lower() not in ("true", "false"):
            raise GraphError(100, "(#100) Param hide must be a boolean")
        comment.hidden = hide.lower() == "true"
        return {"success": True}

    # DELETE /{comment}
    def _delete_node(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        comment = self._comments.get(node)
        if comment is None or not self._owns_comment(ctx.account, comment):
            raise _missing(node, "delete")
        self._delete_comment(node)
        return {"success": True}

    # POST /{ig-id}/messages  {"recipient": {"id"|"comment_id"}, "message": {"text"}}
    def _post_message(self, node: str, ctx: _Ctx) -> dict[str, Any]:
        acc = self._node_account(node, ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        raw_recipient, raw_message = body.get("recipient"), body.get("message")
        recipient: dict[str, Any] = raw_recipient if isinstance(raw_recipient, dict) else {}
        text = raw_message.get("text") if isinstance(raw_message, dict) else None
        if not isinstance(text, str) or not text:
            raise GraphError(100, "(#100) Message text is required")
        if len(text.encode()) > 1000:
            raise GraphError(100, "(#100) Length of param message[text] must be less than or equal to 1000")
        if "comment_id" in recipient:
            return self._private_reply(acc, str(recipient["comment_id"]), text)
        return self._send_dm(acc, str(recipient.get("id", "")), text, body)

    def _send_dm(self, acc: _Account, recipient_id: str, text: str, body: Mapping[str, Any]) -> dict[str, Any]:
        conv = next((c for c in self._conversations.values()
                     if c.owner == acc.ig_id and c.user_id == recipient_id), None)
        if conv is None:
            raise GraphError(100, "(#100) No matching user found", subcode=2018001)
        human_agent = body.get("messaging_type") == "MESSAGE_TAG" and body.get("tag") == "HUMAN_AGENT"
        window = HUMAN_AGENT_WINDOW if human_agent else DM_WINDOW
        last_in = max((m.created_time for m in conv.messages if m.sender_id == recipient_id), default=None)
        if last_in is None or self._now() - last_in > window:
            raise GraphError(10, WINDOW_MESSAGE, subcode=2534022)
        msg = self._append_message(conv, acc, text, self._now(), outgoing=True)
        self._sent_dms.append(SentDM(recipient_id, text, msg.id, tag="HUMAN_AGENT" if human_agent else None))
        return {"recipient_id": recipient_id, "message_id": msg.id}

    def _private_reply(self, acc: _Account, comment_id: str, text: str) -> dict[str, Any]:
        comment = self._comments.get(comment_id)
        if comment is None or not self._owns_comment(acc, comment):
            raise _missing(comment_id, "post")
        if self._now() - comment.timestamp > PRIVATE_REPLY_WINDOW:
            raise GraphError(10, WINDOW_MESSAGE, subcode=2534022)
        if comment.private_replied:
            raise GraphError(100, "(#100) A private reply has already been sent to this comment")
        comment.private_replied = True
        conv = self._conversation_with(acc, comment.user_id, comment.username)
        msg = self._append_message(conv, acc, text, self._now(), outgoing=True)
        self._sent_dms.append(SentDM(comment.user_id, text, msg.id, comment_id=comment_id))
        return {"recipient_id": comment.user_id, "message_id": msg.id}

    # ---- rendering -------------------------------------------------------

    def _media_json(self, m: _Media, fields: Fields) -> dict[str, Any]:
        full = {"id": m.id, "caption": m.caption, "timestamp": _fmt(m.timestamp),
                "comments_count": self._count_comments(m.id), "permalink": m.permalink,
                "media_type": m.media_type, "media_product_type": m.media_product_type,
                "like_count": 0, "username": self._accounts[m.owner].username}
        return _select(full, fields)

    def _comment_json(self, c: _Comment, fields: Fields, ctx: _Ctx) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": c.id, "text": c.text, "timestamp": _fmt(c.timestamp), "username": c.username,
            "from": {"id": c.user_id, "username": c.username}, "hidden": c.hidden, "like_count": 0,
            "media": {"id": c.media_id, "media_product_type": self._media[c.media_id].media_product_type},
        }
        if c.parent_id is not None:
            full["parent_id"] = c.parent_id  # Meta sends parent_id on replies only
        out = _select(full, fields)
        spec = fields.get("replies")
        if spec is not None and c.parent_id is None and self._has_replies(c):
            sub = spec.sub or _DEFAULT_COMMENT_FIELDS
            limit_params = {"limit": str(spec.limit or self.replies_page_size)}
            out["replies"] = self._replies_page(c, sub, ctx, limit_params, default=self.replies_page_size)
        return out

    def _replies_page(
        self, parent: _Comment, fields: Fields, ctx: _Ctx, params: Mapping[str, str], *, default: int
    ) -> dict[str, Any]:
        replies = sorted((self._comments[r] for r in self._children.get(parent.id, ())), key=_comment_key)
        return self._paged(replies, _comment_key, ctx, parent.id, "replies",
                           lambda r: self._comment_json(r, fields, ctx), default=default, maximum=50,
                           visible=lambda r: not r.restricted, params=params, reverse=False,
                           next_fields=fields_to_str(fields))

    def _conversation_json(self, conv: _Conversation, fields: Fields, ctx: _Ctx) -> dict[str, Any]:
        acc = self._accounts[conv.owner]
        full = {"id": conv.id, "updated_time": _fmt(conv.updated_time),
                "participants": {"data": [{"id": acc.ig_id, "username": acc.username},
                                          {"id": conv.user_id, "username": conv.username}]}}
        out = _select(full, fields)
        spec = fields.get("messages")
        if spec is not None:
            sub = spec.sub or {"id": FieldSpec(), "created_time": FieldSpec()}
            out["messages"] = self._messages_page(conv, sub, ctx, {"limit": str(spec.limit or 20)})
        return out

    def _messages_page(
        self, conv: _Conversation, fields: Fields, ctx: _Ctx, params: Mapping[str, str]
    ) -> dict[str, Any]:
        newest_first = sorted(conv.messages, key=_message_key, reverse=True)
        detailed = {m.id for m in newest_first[:DETAILED_MESSAGES]}
        def render(m: Any) -> dict[str, Any]:
            return self._message_json(m, fields) if m.id in detailed else {"id": m.id, "created_time": _fmt(m.created_time)}
        return self._paged(newest_first, _message_key, ctx, conv.id, "messages", render, default=20,
                           maximum=100, params=params, next_fields=fields_to_str(fields))

    def _message_json(self, m: _Message, fields: Fields) -> dict[str, Any]:
        full = {"id": m.id, "created_time": _fmt(m.created_time), "message": m.text,
                "from": {"username": m.sender_username, "id": m.sender_id},
                "to": {"data": [{"username": m.recipient_username, "id": m.recipient_id}]}}
        return _select(full, fields)

    def _message_detail(self, m: _Message, fields: Fields) -> dict[str, Any]:
        conv = self._conversations[m.conversation_id]
        newest = sorted(conv.messages, key=_message_key, reverse=True)[:DETAILED_MESSAGES]
        if m not in newest:
            raise GraphError(9000001, "This message has been deleted.")  # reported by several tools [T]
        return self._message_json(m, fields or {"id": FieldSpec(), "created_time": FieldSpec()})

    def _paged(
        self,
        items: Sequence[T],
        key: Callable[[T], tuple[float, str]],
        ctx: _Ctx,
        node: str,
        edge: str,
        render: Callable[[T], dict[str, Any]],
        *,
        default: int,
        maximum: int,
        visible: Callable[[T], bool] = lambda _: True,
        params: Mapping[str, str] | None = None,
        reverse: bool = True,
        next_fields: str | None = None,
    ) -> dict[str, Any]:
        """Cursor pagination: opaque base64 cursors of the sort key, absolute next/previous URLs."""
        params = ctx.params if params is None else params
        limit = _limit(params, default, maximum)
        window, more_after, more_before = _slice(items, key, params, limit, reverse)
        page: dict[str, Any] = {"data": [render(i) for i in window if visible(i)]}
        if not window:
            return page
        cursors = {"before": _cursor(key(window[0])), "after": _cursor(key(window[-1]))}
        paging: dict[str, Any] = {"cursors": cursors}
        link = {k: v for k, v in params.items() if k not in ("after", "before")}
        link["limit"] = str(limit)
        if next_fields is not None:
            link["fields"] = next_fields
        if ctx.token:
            link["access_token"] = ctx.token  # Meta's next URLs carry the token too
        base = f"{ctx.origin}/{self.version}/{node}/{edge}"
        if more_after:
            paging["next"] = f"{base}?{urlencode(link | {'after': cursors['after']})}"
        if more_before:
            paging["previous"] = f"{base}?{urlencode(link | {'before': cursors['before']})}"
        page["paging"] = paging
        return page

    # ---- helpers (call with the lock held) -----------------------------------

    def _now(self) -> datetime:
        return self._clock if self._clock is not None else datetime.now(UTC).replace(microsecond=0)

    def _at(self, timestamp: datetime | None) -> datetime:
        return (timestamp or self._now()).astimezone(UTC).replace(microsecond=0)

    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:014d}"

    def _opaque_id(self, kind: str) -> str:
        self._counter += 1
        return base64.urlsafe_b64encode(f"ig_{kind}:{self._counter:010d}".encode()).decode().rstrip("=")

    def _user_id(self, username: str) -> str:
        if username not in self._user_ids:
            self._user_ids[username] = self._new_id("9")
        return self._user_ids[username]

    def _account_id(self, account: str | None) -> str:
        if account is not None:
            if account not in self._accounts:
                raise KeyError(account)
            return account
        if len(self._accounts) != 1:
            raise ValueError("name the account: zero or several are registered")
        return next(iter(self._accounts))

    def _node_account(self, node: str, ctx: _Ctx) -> _Account:
        if node not in ("me", ctx.account.ig_id):
            raise _missing(node, ctx.method.lower())
        return ctx.account

    def _owns_comment(self, acc: _Account, c: _Comment) -> bool:
        return self._media[c.media_id].owner == acc.ig_id

    def _has_replies(self, c: _Comment) -> bool:
        return bool(self._children.get(c.id))

    def _comments_of(self, media_id: str) -> list[_Comment]:
        return [self._comments[cid] for cid in self._by_media.get(media_id, ())]

    def _count_comments(self, media_id: str) -> int:
        # Includes replies and restricted comments, like Meta's comments_count.
        return len(self._by_media.get(media_id, ()))

    def _delete_comment(self, comment_id: str) -> None:
        if comment_id not in self._comments:
            raise KeyError(comment_id)
        for reply_id in list(self._children.pop(comment_id, ())):
            self._forget_comment(reply_id)
        self._forget_comment(comment_id)

    def _forget_comment(self, comment_id: str) -> None:
        comment = self._comments.pop(comment_id)
        self._by_media.get(comment.media_id, {}).pop(comment_id, None)
        if comment.parent_id is not None:
            self._children.get(comment.parent_id, {}).pop(comment_id, None)

    def _conversation_with(self, acc: _Account, user_id: str, username: str) -> _Conversation:
        for conv in self._conversations.values():
            if conv.owner == acc.ig_id and conv.user_id == user_id:
                return conv
        conv = _Conversation(self._opaque_id("conv"), acc.ig_id, user_id, username)
        self._conversations[conv.id] = conv
        return conv

    def _append_message(
        self, conv: _Conversation, acc: _Account, text: str, at: datetime, *, outgoing: bool
    ) -> _Message:
        ours = (acc.ig_id, acc.username)
        theirs = (conv.user_id, conv.username)
        (sid, sname), (rid, rname) = (ours, theirs) if outgoing else (theirs, ours)
        msg = _Message(self._opaque_id("msg"), conv.id, sid, sname, rid, rname, text, at)
        conv.messages.append(msg)
        return msg

    def _find_message(self, acc: _Account, message_id: str) -> _Message | None:
        for conv in self._conversations.values():
            if conv.owner == acc.ig_id:
                for m in conv.messages:
                    if m.id == message_id:
                        return m
        return None


@dataclass(frozen=True)
class _Ctx:
    account: _Account
    params: Mapping[str, str]
    body: Any
    method: str
    origin: str
    token: str | None


_ROUTES: dict[tuple[str, str], Callable[[FakeInstagram, str, _Ctx], dict[str, Any]]] = {
    ("GET", "media"): FakeInstagram._get_media,
    ("GET", "comments"): FakeInstagram._get_comments,
    ("GET", "replies"): FakeInstagram._get_replies,
    ("GET", "conversations"): FakeInstagram._get_conversations,
    ("GET", "messages"): FakeInstagram._get_messages,
    ("POST", "replies"): FakeInstagram._post_reply,
    ("POST", "messages"): FakeInstagram._post_message,
}
_NODE_ROUTES: dict[str, Callable[[FakeInstagram, str, _Ctx], dict[str, Any]]] = {
    "GET": FakeInstagram._get_node,
    "POST": FakeInstagram._post_node,
    "DELETE": FakeInstagram._delete_node,
}
_THROTTLE_MESSAGES = {
    80002: "There have been too many calls to this Instagram account. Wait a bit and try again.",
    4: "(#4) Application request limit reached",
    613: "(#613) Calls to this API have exceeded the rate limit.",
    17: "(#17) User request limit reached",
}
_DEFAULT_COMMENT_FIELDS: Fields = {"id": FieldSpec(), "text": FieldSpec(), "timestamp": FieldSpec()}


# ---- field selection ---------------------------------------------------------


def parse_fields(spec: str) -> Fields:
    """"id,from{id,username},replies.limit(5){id}" -> nested FieldSpec tree."""
    fields, rest = _parse_field_list(spec.replace(" ", ""), 0)
    if rest != len(spec.replace(" ", "")):
        raise GraphError(100, f"Syntax error in fields: {spec!r}")
    return fields


def _parse_field_list(spec: str, pos: int) -> tuple[Fields, int]:
    fields: Fields = {}
    while pos < len(spec) and spec[pos] != "}":
        name_end = pos
        while name_end < len(spec) and spec[name_end] not in ",{}":
            name_end += 1
        name, limit = _split_modifiers(spec[pos:name_end])
        pos = name_end
        sub: Fields | None = None
        if pos < len(spec) and spec[pos] == "{":
            sub, pos = _parse_field_list(spec, pos + 1)
            if pos >= len(spec) or spec[pos] != "}":
                raise GraphError(100, f"Syntax error in fields: {spec!r}")
            pos += 1
        if name:
            fields[name] = FieldSpec(sub, limit)
        if pos < len(spec) and spec[pos] == ",":
            pos += 1
    return fields, pos


def _split_modifiers(token: str) -> tuple[str, int | None]:
    name, *mods = token.split(".")
    limit = None
    for mod in mods:
        if mod.startswith("limit(") and mod.endswith(")") and mod[6:-1].isdigit():
            limit = int(mod[6:-1])
    return name, limit


def fields_to_str(fields: Fields) -> str:
    parts = []
    for name, spec in fields.items():
        mod = f".limit({spec.limit})" if spec.limit else ""
        sub = f"{{{fields_to_str(spec.sub)}}}" if spec.sub else ""
        parts.append(f"{name}{mod}{sub}")
    return ",".join(parts)


def _select(full: Mapping[str, Any], fields: Fields) -> dict[str, Any]:
    chosen = fields or {"id": FieldSpec()}
    out: dict[str, Any] = {}
    for name, spec in chosen.items():
        if name not in full:
            continue
        value = full[name]
        if spec.sub and isinstance(value, dict) and "data" not in value:
            value = _select(value, spec.sub)
        out[name] = value
    return out


# ---- pagination helpers --------------------------------------------------------


def _cursor(key: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[float, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(raw[0]), str(raw[1])
    except (ValueError, IndexError, TypeError) as exc:
        raise GraphError(100, "(#100) Invalid cursor") from exc


def _limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    raw = params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise GraphError(100, "(#100) Param limit must be a positive integer")
    return min(int(raw), maximum)


def _slice(
    items: Sequence[T], key: Callable[[T], tuple[float, str]], params: Mapping[str, str], limit: int, reverse: bool
) -> tuple[list[T], bool, bool]:
    """The page after/before a cursor. Keys, not positions, so deletions never shift a page."""
    def later(k: tuple[float, str], than: tuple[float, str]) -> bool:
        return k < than if reverse else k > than

    if "after" in params:
        anchor = _uncursor(params["after"])
        rest = [i for i in items if later(key(i), anchor)]
        return rest[:limit], len(rest) > limit, len(rest) < len(items)
    if "before" in params:
        anchor = _uncursor(params["before"])
        head = [i for i in items if later(anchor, key(i))]
        window = head[-limit:]
        return window, len(head) < len(items), len(head) > limit
    return list(items[:limit]), len(items) > limit, False


def _media_key(m: _Media) -> tuple[float, str]:
    return m.timestamp.timestamp(), m.id


def _comment_key(c: _Comment) -> tuple[float, str]:
    return c.timestamp.timestamp(), c.id


def _conversation_key(c: _Conversation) -> tuple[float, str]:
    return c.updated_time.timestamp(), c.id


def _message_key(m: _Message) -> tuple[float, str]:
    return m.created_time.timestamp(), m.id


# ---- small helpers ---------------------------------------------------------------


def _fmt(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FMT)


def _missing(node: str, verb: str) -> GraphError:
    return GraphError(100, MISSING_OBJECT.format(verb=verb, id=node), subcode=33)


def _token_of(request: web.Request, params: Mapping[str, str]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return params.get("access_token")


def _fault_error(fault: _Fault) -> GraphError:
    status = fault.http_status or 400
    code = fault.code if fault.code is not None else (2 if status >= 500 else 1)
    transient = fault.is_transient if fault.is_transient is not None else code in (1, 2)
    message = fault.message or _FAULT_MESSAGES.get(code, "An unexpected error has occurred. Please retry your request later.")
    return GraphError(code, message, subcode=fault.subcode, status=status, transient=transient)


_FAULT_MESSAGES = {
    2: "An unexpected error has occurred. Please retry your request later.",
    10: "(#10) Application does not have permission for this action",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    **_THROTTLE_MESSAGES,
}


def _corrupt_first_item(result: dict[str, Any], how: str) -> None:
    data = result.get("data")
    if not isinstance(data, list) or not data:
        return
    if how == "not_object":
        data[0] = "garbage"
    elif how in ("bad_timestamp", "unreachable_timestamp"):
        # "unreachable": valid ISO 8601 whose moment in UTC lies past the year 9999
        value = "yesterday-ish" if how == "bad_timestamp" else "9999-12-31T23:59:59-2359"
        for key in ("timestamp", "created_time", "updated_time"):
            if key in data[0]:
                data[0][key] = value
    else:
        data[0].pop("id", None)


async def _read_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    if request.content_type == "application/json":
        try:
            return await request.json()
        except ValueError:
            return None
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}

