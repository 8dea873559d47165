"""A fake Meta webhook sender: builds Instagram notifications, signs them and POSTs them like Meta.

Meta serialises the JSON itself and signs the bytes it sends: no spaces,
non-ASCII as \\uXXXX escapes (emoji as surrogate pairs), "/" as "\\/", and
`X-Hub-Signature-256: sha256=<lowercase hex HMAC-SHA256(app secret, body)>`
(plus the legacy sha1 `X-Hub-Signature`). A receiver that re-serialises the
parsed JSON before checking gets a different digest for exactly these texts,
which is what the escaping here is for. See /work/shared/API-NOTES.md, part A §5.

Builders return plain dicts (entry(), comment_change(), dm(), echo(), payload());
`MetaWebhookSender` posts them, and can also post bad, missing and replayed signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

_ids = itertools.count(1)


def _next(prefix: str) -> str:
    return f"{prefix}{next(_ids):014d}"


# -- payload builders ----------------------------------------------------------


def comment_change(
    comment_id: str | None = None,
    text: str = "Min, bansos PKH saya belum cair",
    *,
    username: str = "warga.biasa",
    user_id: str = "9000000000001",
    media_id: str = "17900000000000001",
    parent_id: str | None = None,
    field: str = "comments",
    media_product_type: str = "FEED",
) -> dict[str, Any]:
    """One `changes[]` item for a comment (field "comments" or "live_comments")."""
    value: dict[str, Any] = {
        "from": {"id": user_id, "username": username},
        "media": {"id": media_id, "media_product_type": media_product_type},
        "id": comment_id or _next("178"),
        "text": text,
    }
    if parent_id is not None:
        value["parent_id"] = parent_id
    return {"field": field, "value": value}


def dm(
    text: str | None = "Selamat siang, NIK saya tidak ditemukan",
    *,
    mid: str | None = None,
    sender_id: str = "9000000000002",
    recipient_id: str = "17841400000000001",
    timestamp_ms: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
    **flags: Any,
) -> dict[str, Any]:
    """One `messaging[]` item carrying a message; flags such as is_echo=True, is_deleted=True."""
    message: dict[str, Any] = {"mid": mid or _next("aWdfZAG1faXRlbTox")}
    if text is not None:
        message["text"] = text
    if attachments is not None:
        message["attachments"] = attachments
    message.update(flags)
    return {
        "sender": {"id": sender_id},
        "recipient": {"id": recipient_id},
        "timestamp": timestamp_ms if timestamp_ms is not None else _ms(datetime.now(timezone.utc)),
        "message": message,
    }


def echo(account_id: str, text: str = "Terima kasih, laporan Anda kami teruskan", *, to: str = "9000000000002",
         mid: str | None = None) -> dict[str, Any]:
    """The business's own sent DM coming back on the `messages` field, as Meta echoes it."""
    return dm(text, mid=mid, sender_id=account_id, recipient_id=to, is_echo=True)


def reaction(sender_id: str, mid: str, account_id: str) -> dict[str, Any]:
    """A `message_reactions` item: no `message`, nothing to triage."""
    return {"sender": {"id": sender_id}, "recipient": {"id": account_id}, "timestamp": _ms(datetime.now(timezone.utc)),
            "reaction": {"mid": mid, "action": "react", "reaction": "love", "emoji": "\u2764"}}


def entry(
    account_id: str,
    *,
    changes: list[Any] | None = None,
    messaging: list[Any] | None = None,
    time: int | None = None,
) -> dict[str, Any]:
    """One `entry[]`: comment changes carry `time` in seconds, messaging in milliseconds (as Meta does)."""
    now = datetime.now(timezone.utc)
    out: dict[str, Any] = {"id": account_id}
    if changes is not None:
        out["time"] = time if time is not None else int(now.timestamp())
        out["changes"] = changes
    if messaging is not None:
        out["time"] = time if time is not None else _ms(now)
        out["messaging"] = messaging
    if "time" not in out:
        out["time"] = time if time is not None else int(now.timestamp())
    return out


def payload(*entries: dict[str, Any], obj: str = "instagram") -> dict[str, Any]:
    """A notification; several entries make a batch, as Meta sends under load."""
    return {"object": obj, "entry": list(entries)}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# -- serialising and signing ---------------------------------------------------


def serialize(data: Any) -> bytes:
    """JSON as Meta sends it: compact, ASCII only (\\uXXXX escapes), "/" escaped as "\\/".

    "/" can only occur inside JSON strings, so escaping every "/" is exact."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_sha1(app_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str]


class MetaWebhookSender:
    """POSTs notifications to `url` as Meta would, and runs the verification handshake.

    `async with MetaWebhookSender(url, secret) as meta:`; `meta.sent` keeps every delivery."""

    def __init__(self, url: str, app_secret: str, *, timeout: float = 5.0) -> None:
        self.url, self.app_secret = url, app_secret
        self._client = httpx.AsyncClient(timeout=timeout)
        self.sent: list[Delivery] = []

    async def __aenter__(self) -> MetaWebhookSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def verify(self, verify_token: str | None, challenge: str = "1158201444",
                     mode: str = "subscribe") -> httpx.Response:
        """The subscription handshake Meta runs when the callback URL is saved."""
        params = {"hub.mode": mode, "hub.challenge": challenge}
        if verify_token is not None:
            params["hub.verify_token"] = verify_token
        return await self._client.get(self.url, params=params)

    async def send(self, data: Any, *, body: bytes | None = None, signature: str | None = None,
                   unsigned: bool = False, secret: str | None = None) -> httpx.Response:
        """Serialise `data` like Meta (or send `body` as is), sign with the app secret (or
        `secret`, or the literal `signature`; `unsigned` sends no signature header) and POST."""
        raw = serialize(data) if body is None else body
        key = secret if secret is not None else self.app_secret
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if not unsigned:
            headers["X-Hub-Signature-256"] = signature if signature is not None else sign(key, raw)
            headers["X-Hub-Signature"] = sign_sha1(key, raw)
        return await self._post(Delivery(raw, headers))

    async def send_bad_signature(self, data: Any) -> httpx.Response:
        """Signed with another secret: what a forger without the app secret can do."""
        return await self.send(data, secret=self.app_secret + "-wrong")

    async def send_unsigned(self, data: Any) -> httpx.Response:
        return await self.send(data, unsigned=True)

    async def send_tampered(self, data: Any, tampered: Any) -> httpx.Response:
        """The signature of `data` on the body of `tampered`: a man in the middle's edit."""
        return await self.send(tampered, signature=sign(self.app_secret, serialize(data)))

    async def replay(self, index: int = -1) -> httpx.Response:
        """The same bytes and headers again: Meta's retry after a lost answer, or an attacker's replay."""
        return await self._post(self.sent[index])

    async def _post(self, delivery: Delivery) -> httpx.Response:
        self.sent.append(delivery)
        return await self._client.post(self.url, content=delivery.body, headers=delivery.headers)
