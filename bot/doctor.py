"""`triage doctor`: is this installation ready to go live? One line per check.

It asks the real services what the bot will need from them: Telegram's getMe for the
token, getChat and getChatMember for each configured group, Instagram's /me, media,
comments and conversations for each account's token and its permissions, and the
webhook endpoint (Meta's handshake and a signed empty delivery) when one is given.
Nothing is written anywhere: no message is sent, no ticket is made, no token refreshed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import httpx

from bot.config import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
TAGS = {"en": {OK: "OK  ", WARN: "WARN", FAIL: "FAIL"}, "id": {OK: "OK  ", WARN: "AWAS", FAIL: "GAGAL"}}

# Each check's message in English and Indonesian; {names} are filled in from the check.
MESSAGES: dict[str, dict[str, str]] = {
    "tg_no_token": {
        "en": "Telegram: TELEGRAM_BOT_TOKEN is not set; put the token @BotFather gave in it",
        "id": "Telegram: TELEGRAM_BOT_TOKEN belum diisi; isi dengan token dari @BotFather"},
    "tg_token_ok": {
        "en": "Telegram: the token works, the bot is @{username} (id {id}){privacy}",
        "id": "Telegram: token berfungsi, botnya @{username} (id {id}){privacy}"},
    "tg_privacy_on": {"en": "; privacy mode on (fine: commands and replies reach it)",
                      "id": "; mode privasi aktif (tidak masalah: perintah dan balasan tetap sampai)"},
    "tg_privacy_off": {"en": "; privacy mode off (it receives every group message)",
                       "id": "; mode privasi mati (bot menerima semua pesan grup)"},
    "tg_token_refused": {
        "en": "Telegram: the token is refused; copy it again from @BotFather (/token) into TELEGRAM_BOT_TOKEN",
        "id": "Telegram: token ditolak; salin lagi dari @BotFather (/token) ke TELEGRAM_BOT_TOKEN"},
    "tg_unreachable": {
        "en": "Telegram: cannot reach {url} ({reason}); check the internet connection, firewall or proxy",
        "id": "Telegram: {url} tidak dapat dihubungi ({reason}); periksa koneksi internet, firewall atau proxy"},
    "tg_skipped": {
        "en": "Telegram group {what} ({chat}): not checked, the token does not work",
        "id": "Grup Telegram {what} ({chat}): tidak diperiksa, token tidak berfungsi"},
    "group_ok": {
        "en": "Telegram group {what} ({chat}) \"{title}\": the bot is {status} and may send{extra}",
        "id": "Grup Telegram {what} ({chat}) \"{title}\": bot berstatus {status} dan boleh mengirim{extra}"},
    "group_files": {"en": " messages, photos and documents", "id": " pesan, foto dan dokumen"},
    "group_texts": {"en": " messages", "id": " pesan"},
    "group_missing": {
        "en": "Telegram group {what} ({chat}): not found; add the bot to the group, then send /id@{bot} there "
              "and put the id it answers in routing.yaml",
        "id": "Grup Telegram {what} ({chat}): tidak ditemukan; tambahkan bot ke grup, kirim /id@{bot} di sana "
              "dan tulis ID yang dijawabnya di routing.yaml"},
    "group_migrated": {
        "en": "Telegram group {what} ({chat}): it became a supergroup with id {new}; write {new} in routing.yaml",
        "id": "Grup Telegram {what} ({chat}): sudah menjadi supergrup dengan ID {new}; tulis {new} di routing.yaml"},
    "group_not_group": {
        "en": "Telegram chat {what} ({chat}) is a {type}, not a group; use the group's id (send /id@{bot} in it)",
        "id": "Chat Telegram {what} ({chat}) berjenis {type}, bukan grup; pakai ID grupnya (kirim /id@{bot} di grup)"},
    "group_left": {
        "en": "Telegram group {what} ({chat}) \"{title}\": the bot is {status}; add it to the group again",
        "id": "Grup Telegram {what} ({chat}) \"{title}\": bot berstatus {status}; tambahkan lagi bot ke grup"},
    "group_muted": {
        "en": "Telegram group {what} ({chat}) \"{title}\": the bot may not send {missing}; lift the restriction "
              "in the group's settings (Permissions or Exceptions)",
        "id": "Grup Telegram {what} ({chat}) \"{title}\": bot tidak boleh mengirim {missing}; cabut pembatasannya "
              "di pengaturan grup (Izin atau Pengecualian)"},
    "group_forbidden": {
        "en": "Telegram group {what} ({chat}): the bot may not see it ({reason}); add the bot to the group again",
        "id": "Grup Telegram {what} ({chat}): bot tidak dapat melihatnya ({reason}); tambahkan lagi bot ke grup"},
    "group_people_absent": {
        "en": "Telegram group {what} ({chat}): user id(s) {people} from routing.yaml are not members; ask them to "
              "join (or fix the id: each person gets theirs with /id)",
        "id": "Grup Telegram {what} ({chat}): user id {people} dari routing.yaml bukan anggota grup; minta mereka "
              "bergabung (atau perbaiki ID-nya: tiap orang mendapatkannya dengan /id)"},
    "group_error": {
        "en": "Telegram group {what} ({chat}): Telegram answered: {reason}",
        "id": "Grup Telegram {what} ({chat}): jawaban Telegram: {reason}"},
    "ig_no_token": {
        "en": "Instagram {account}: {env} is not set; put the account's long-lived token in it",
        "id": "Instagram {account}: {env} belum diisi; isi dengan token jangka panjang akun ini"},
    "ig_token_ok": {
        "en": "Instagram {account}: the token works, it is @{username} (user id {id})",
        "id": "Instagram {account}: token berfungsi, akunnya @{username} (user id {id})"},
    "ig_wrong_account": {
        "en": "Instagram {account}: the token is for user id {id} (@{username}) but routing.yaml says {expected}; "
              "fix instagram_user_id or the token",
        "id": "Instagram {account}: token ini milik user id {id} (@{username}) padahal routing.yaml menulis "
              "{expected}; perbaiki instagram_user_id atau tokennya"},
    "ig_token_refused": {
        "en": "Instagram {account}: the token is refused ({reason}); make a new long-lived token, put it in {env}, "
              "restart, then `triage resume {account}`",
        "id": "Instagram {account}: token ditolak ({reason}); buat token jangka panjang baru, isi {env}, "
              "jalankan ulang, lalu `triage resume {account}`"},
    "ig_unreachable": {
        "en": "Instagram {account}: cannot reach {url} ({reason})",
        "id": "Instagram {account}: {url} tidak dapat dihubungi ({reason})"},
    "ig_scope_ok": {
        "en": "Instagram {account}: permission {scope} works ({what})",
        "id": "Instagram {account}: izin {scope} berfungsi ({what})"},
    "ig_scope_missing": {
        "en": "Instagram {account}: permission {scope} is missing ({reason}); grant it in the App Dashboard "
              "and make a new token",
        "id": "Instagram {account}: izin {scope} tidak ada ({reason}); berikan di App Dashboard lalu buat "
              "token baru"},
    "ig_scope_error": {
        "en": "Instagram {account}: {scope} could not be checked ({reason})",
        "id": "Instagram {account}: {scope} tidak dapat diperiksa ({reason})"},
    "ig_scope_untested": {
        "en": "Instagram {account}: {scope} not checked: the account has no post to read comments of",
        "id": "Instagram {account}: {scope} tidak diperiksa: akun belum punya unggahan untuk dibaca komentarnya"},
    "wh_off": {
        "en": "Webhooks: not configured (INSTAGRAM_APP_SECRET is not set); polling alone brings comments and DMs",
        "id": "Webhook: tidak dipakai (INSTAGRAM_APP_SECRET kosong); komentar dan DM diambil dengan polling saja"},
    "wh_no_url": {
        "en": "Webhooks: INSTAGRAM_APP_SECRET is set; give --webhook-url https://YOUR-HOST/webhooks/instagram "
              "(or TRIAGE_WEBHOOK_URL) to check that Meta can reach it",
        "id": "Webhook: INSTAGRAM_APP_SECRET terisi; beri --webhook-url https://HOST-ANDA/webhooks/instagram "
              "(atau TRIAGE_WEBHOOK_URL) untuk memeriksa apakah Meta dapat menjangkaunya"},
    "wh_no_verify": {
        "en": "Webhooks: INSTAGRAM_WEBHOOK_VERIFY_TOKEN is not set; Meta's subscription handshake will be refused",
        "id": "Webhook: INSTAGRAM_WEBHOOK_VERIFY_TOKEN kosong; jabat tangan langganan dari Meta akan ditolak"},
    "wh_verify_ok": {
        "en": "Webhooks: {url} answers Meta's subscription handshake",
        "id": "Webhook: {url} menjawab jabat tangan langganan dari Meta"},
    "wh_verify_bad": {
        "en": "Webhooks: {url} refused the handshake (HTTP {status}); the verify token there differs from "
              "INSTAGRAM_WEBHOOK_VERIFY_TOKEN here, or the address does not lead to `triage webhook`",
        "id": "Webhook: {url} menolak jabat tangan (HTTP {status}); verify token di sana berbeda dengan "
              "INSTAGRAM_WEBHOOK_VERIFY_TOKEN di sini, atau alamatnya tidak menuju `triage webhook`"},
    "wh_post_ok": {
        "en": "Webhooks: {url} takes a delivery signed with INSTAGRAM_APP_SECRET",
        "id": "Webhook: {url} menerima kiriman yang ditandatangani dengan INSTAGRAM_APP_SECRET"},
    "wh_post_bad": {
        "en": "Webhooks: {url} refused a signed delivery (HTTP {status}); INSTAGRAM_APP_SECRET differs between "
              "here and the webhook process, or the proxy changes the body",
        "id": "Webhook: {url} menolak kiriman bertanda tangan (HTTP {status}); INSTAGRAM_APP_SECRET berbeda antara "
              "di sini dan proses webhook, atau proxy mengubah isinya"},
    "wh_unreachable": {
        "en": "Webhooks: cannot reach {url} ({reason}); check DNS, the HTTPS certificate, the reverse proxy and "
              "that `triage webhook` runs",
        "id": "Webhook: {url} tidak dapat dihubungi ({reason}); periksa DNS, sertifikat HTTPS, reverse proxy dan "
              "apakah `triage webhook` berjalan"},
    "summary_ok": {"en": "{count} check(s): all passed", "id": "{count} pemeriksaan: semua lolos"},
    "summary_bad": {"en": "{count} check(s): {failed} failed, {warned} warning(s)",
                    "id": "{count} pemeriksaan: {failed} gagal, {warned} peringatan"},
}


@dataclass(frozen=True)
class Check:
    """One finding: its level (ok, warn, fail), its message key and what fills it in."""

    level: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def line(self, lang: str) -> str:
        values = {k: (MESSAGES[v]["id" if lang == "id" else "en"] if k in ("privacy", "extra") and v in MESSAGES
                      else v) for k, v in self.values.items()}
        text = MESSAGES[self.key][lang].format(**values)
        return f"{TAGS[lang][self.level]} {text}"


def summary(checks: list[Check], lang: str) -> str:
    failed = sum(c.level == FAIL for c in checks)
    warned = sum(c.level == WARN for c in checks)
    if not failed and not warned:
        return MESSAGES["summary_ok"][lang].format(count=len(checks))
    return MESSAGES["summary_bad"][lang].format(count=len(checks), failed=failed, warned=warned)


# -- Telegram ---------------------------------------------------------------------

async def check_telegram(settings: Settings) -> list[Check]:
    from telegram import Bot
    from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, TelegramError

    groups = _groups(settings)
    if not settings.telegram_token:
        return [Check(FAIL, "tg_no_token")]
    bot = Bot(settings.telegram_token, base_url=f"{settings.telegram_api_url}/bot",
              base_file_url=f"{settings.telegram_api_url}/file/bot")
    skipped = [Check(FAIL, "tg_skipped", {"what": w, "chat": c}) for c, w in groups.items()]
    try:
        await bot.initialize()  # getMe
    except InvalidToken:
        await bot.shutdown()
        return [Check(FAIL, "tg_token_refused")] + skipped
    except NetworkError as err:
        await bot.shutdown()
        return [Check(FAIL, "tg_unreachable", {"url": settings.telegram_api_url, "reason": _reason(err)})] + skipped
    me = bot.bot
    checks = [Check(OK, "tg_token_ok", {"username": me.username, "id": me.id,
                                         "privacy": "tg_privacy_off" if me.can_read_all_group_messages
                                         else "tg_privacy_on"})]
    files = {settings.routing.media_team.chat_id, settings.routing.supervisor.chat_id}  # digest chart, report PDF
    people = _people(settings)
    try:
        for chat_id, what in groups.items():
            base = {"what": what, "chat": chat_id, "bot": me.username}
            try:
                chat = await bot.get_chat(chat_id)
                if chat.type not in ("group", "supergroup"):
                    checks.append(Check(FAIL, "group_not_group", base | {"type": chat.type}))
                    continue
                member = await bot.get_chat_member(chat_id, me.id)
            except ChatMigrated as err:
                checks.append(Check(FAIL, "group_migrated", base | {"new": err.new_chat_id}))
                continue
            except Forbidden as err:
                checks.append(Check(FAIL, "group_forbidden", base | {"reason": err.message}))
                continue
            except BadRequest as err:
                found = "not found" in err.message.lower()
                checks.append(Check(FAIL, "group_missing" if found else "group_error", base | {"reason": err.message}))
                continue
            except TelegramError as err:
                checks.append(Check(FAIL, "group_error", base | {"reason": _reason(err)}))
                continue
            base["title"] = chat.title or ""
            if member.status in ("left", "kicked"):
                checks.append(Check(FAIL, "group_left", base | {"status": member.status}))
                continue
            needs = ["messages"] + (["photos", "documents"] if chat_id in files else [])
            missing = [n for n in needs if member.status == "restricted"
                       and not getattr(member, f"can_send_{n}", True)]
            if missing:
                checks.append(Check(FAIL, "group_muted", base | {"missing": ", ".join(missing)}))
                continue
            checks.append(Check(OK, "group_ok", base | {"status": member.status,
                                                        "extra": "group_files" if chat_id in files else "group_texts"}))
            absent = []
            for person in people.get(chat_id, ()):
                try:
                    status = (await bot.get_chat_member(chat_id, person)).status
                except BadRequest:  # "member not found", "user not found"
                    status = "left"
                if status in ("left", "kicked"):
                    absent.append(str(person))
            if absent:
                checks.append(Check(WARN, "group_people_absent", base | {"people": ", ".join(absent)}))
    finally:
        await bot.shutdown()
    return checks


def _groups(settings: Settings) -> dict[int, str]:
    """Every configured Telegram group and what it is for, media team and supervisor first."""
    routing = settings.routing
    groups = {routing.media_team.chat_id: "media_team", routing.supervisor.chat_id: "supervisor"}
    for key, account in routing.accounts.items():
        for unit_key, unit in account.units.items():
            if unit.chat_id in groups:
                groups[unit.chat_id] += f", {key}.{unit_key}"
            else:
                groups[unit.chat_id] = f"{key}.{unit_key}"
    return groups


def _people(settings: Settings) -> dict[int, list[int]]:
    """Who routing.yaml expects in each group: officers in their unit's, members in the media team's and
    the supervisor's."""
    routing = settings.routing
    people: dict[int, list[int]] = {routing.media_team.chat_id: list(routing.media_team.members)}
    people.setdefault(routing.supervisor.chat_id, []).extend(routing.supervisor.members)
    for account in routing.accounts.values():
        for unit in account.units.values():
            expected = people.setdefault(unit.chat_id, [])
            expected.extend(o for o in unit.officers if o not in expected)
    return people


# -- Instagram --------------------------------------------------------------------

SCOPE_BASIC = "instagram_business_basic"
SCOPE_COMMENTS = "instagram_business_manage_comments"
SCOPE_MESSAGES = "instagram_business_manage_messages"


async def check_instagram(settings: Settings, token_for: Callable[[str], str | None]) -> list[Check]:
    from bot.instagram import InstagramClient, InstagramError, PermissionDenied, RetryPolicy, TokenInvalid, TransientError

    checks: list[Check] = []
    for key, account in settings.routing.accounts.items():
        base = {"account": key, "env": account.token_env}
        token = token_for(key)
        if not token:
            checks.append(Check(FAIL, "ig_no_token", base))
            continue
        async with InstagramClient(access_token=token, ig_user_id=account.instagram_user_id,
                                   base_url=settings.instagram_graph_url,
                                   retry=RetryPolicy(max_attempts=2, base_delay=0.5, max_throttle_wait=5)) as client:
            try:
                profile = await client.whoami()
            except TokenInvalid as err:
                checks.append(Check(FAIL, "ig_token_refused", base | {"reason": err.message}))
                continue
            except (TransientError, httpx.HTTPError) as err:
                checks.append(Check(FAIL, "ig_unreachable", base | {"url": settings.instagram_graph_url,
                                                                    "reason": _reason(err)}))
                continue
            except InstagramError as err:
                checks.append(Check(FAIL, "ig_token_refused", base | {"reason": err.message}))
                continue
            found = base | {"id": profile.id, "username": profile.username or "?"}
            if profile.id != account.instagram_user_id:
                checks.append(Check(FAIL, "ig_wrong_account", found | {"expected": account.instagram_user_id}))
                continue
            checks.append(Check(OK, "ig_token_ok", found))

            async def probe(scope: str, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
                try:
                    result = await call()
                except PermissionDenied as err:
                    checks.append(Check(FAIL, "ig_scope_missing", base | {"scope": scope, "reason": err.message}))
                    return None
                except (InstagramError, httpx.HTTPError) as err:
                    checks.append(Check(FAIL, "ig_scope_error", base | {"scope": scope, "reason": _reason(err)}))
                    return None
                checks.append(Check(OK, "ig_scope_ok", base | {"scope": scope, "what": what}))
                return result

            media = await probe(SCOPE_BASIC, "GET /{ig-id}/media", lambda: client.list_media(limit=1))
            if media:
                await probe(SCOPE_COMMENTS, "GET /{media-id}/comments", lambda: _first_page(client, media[0].id))
            elif media is not None:
                checks.append(Check(WARN, "ig_scope_untested", base | {"scope": SCOPE_COMMENTS}))
            await probe(SCOPE_MESSAGES, "GET /{ig-id}/conversations", lambda: client.list_conversations(limit=1))
    return checks


async def _first_page(client: Any, media_id: str) -> Any:
    async for page in client.iter_comments(media_id, page_size=1):
        return page
    return []


# -- webhooks ---------------------------------------------------------------------

async def check_webhooks(settings: Settings, url: str | None) -> list[Check]:
    if not settings.app_secret:
        return [Check(OK, "wh_off")]
    checks = []
    if not settings.webhook_verify_token:
        checks.append(Check(FAIL, "wh_no_verify"))
    if not url:
        return checks + [Check(WARN, "wh_no_url")]
    base = {"url": url}
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        try:
            if settings.webhook_verify_token:
                challenge = str(secrets.randbelow(10**9))
                answer = await http.get(url, params={"hub.mode": "subscribe", "hub.challenge": challenge,
                                                     "hub.verify_token": settings.webhook_verify_token})
                good = answer.status_code == 200 and answer.text.strip() == challenge
                checks.append(Check(OK, "wh_verify_ok", base) if good
                              else Check(FAIL, "wh_verify_bad", base | {"status": answer.status_code}))
            # An empty delivery: signed like Meta's, it stores nothing. The nonce makes each one new.
            body = json.dumps({"object": "instagram", "entry": [], "doctor": secrets.token_hex(8)}).encode()
            signature = "sha256=" + hmac.new(settings.app_secret.encode(), body, hashlib.sha256).hexdigest()
            answer = await http.post(url, content=body, headers={"Content-Type": "application/json",
                                                                 "X-Hub-Signature-256": signature})
            checks.append(Check(OK, "wh_post_ok", base) if answer.status_code == 200
                          else Check(FAIL, "wh_post_bad", base | {"status": answer.status_code}))
        except httpx.HTTPError as err:
            checks.append(Check(FAIL, "wh_unreachable", base | {"reason": _reason(err)}))
    return checks


def _reason(err: BaseException) -> str:
    text = str(err).removeprefix("httpx.") or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


async def run_checks(settings: Settings, *, token_for: Callable[[str], str | None],
                     webhook_url: str | None) -> list[Check]:
    """Every check, in the order an operator fixes things: Telegram, Instagram, webhooks."""
    return (await check_telegram(settings) + await check_instagram(settings, token_for)
            + await check_webhooks(settings, webhook_url))
