"""`triage demo`: a day in the life of the bot, offline, in under a minute.

The fake Instagram and Telegram servers run in this process; the real bot
(the same code as production, only pointed at them by URL) polls a day of
comments and DMs, classifies them and forwards tickets; officers press
buttons as people would; the clock jumps past reminders and a deadline; the
supervisor's digest closes the day. Then each chat's messages are printed.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

DEMO_DIR = Path(__file__).resolve().parent
ROOT = DEMO_DIR.parents[1]
TOKENS = {"kemensos": "demo-token-kemensos", "kemendag": "demo-token-kemendag"}
BOT_TOKEN = "424242:DEMO"
WIB = ZoneInfo("Asia/Jakarta")
DAY = datetime(2026, 11, 23, 7, 0, tzinfo=WIB)  # a Monday
# Telegram allows about 20 messages a minute per group; the demo keeps that limit
# but lets a "minute" last 3 seconds, so that a day fits in under a minute.
DEMO_MINUTE = 3.0


def _fakes() -> Any:
    """The fake servers live with the tests; the demo runs from a checkout of the project."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fakes import instagram_server, telegram_server

    return instagram_server, telegram_server


@dataclass
class SimClock:
    """The demo's wall clock: it moves only when the scenario says so."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def load_day(path: Path = DEMO_DIR / "day.jsonl") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    posts: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            (messages if "text" in record else posts).append(record)
    return posts, messages


def seed_instagram(fake: Any, routing: Any) -> int:
    """Posts, comments, replies and DMs of the demo day, at their minutes after 07:00 WIB."""
    posts, messages = load_day()
    ids = {key: acc.instagram_user_id for key, acc in routing.accounts.items()}
    media = {}
    for post in posts:
        media[post["post"]] = fake.add_media(ids[post["account"]], caption=post.get("caption", ""),
                                              timestamp=DAY + timedelta(minutes=post.get("minute_posted", -120)))
    comment_ids: dict[int, str] = {}
    for index, msg in enumerate(messages):
        at = DAY + timedelta(minutes=msg["minute"])
        if msg["channel"] == "dm":
            fake.add_dm(msg["author"], msg["text"], account=ids[msg["account"]], timestamp=at)
            continue
        parent = comment_ids.get(msg["parent"]) if "parent" in msg else None
        comment_ids[index] = fake.add_comment(media[msg["post"]], msg["text"], msg["author"], timestamp=at,
                                              parent_id=parent)
    return len(messages)


def _env(instagram_url: str, telegram_url: str, db: Path) -> dict[str, str]:
    env = {"TRIAGE_CONFIG": str(ROOT / "routing.yaml"), "TRIAGE_DB": str(db), "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
           "TELEGRAM_API_URL": telegram_url, "INSTAGRAM_GRAPH_URL": instagram_url}
    env.update({f"INSTAGRAM_TOKEN_{k.upper()}": v for k, v in TOKENS.items()})
    return env


def setup_telegram(fake: Any, routing: Any) -> dict[int, str]:
    """The groups of routing.yaml and their people, as they would exist in Telegram."""
    titles = {routing.media_team.chat_id: "Tim Media (Humas)", routing.supervisor.chat_id: "Pimpinan"}
    people = set(routing.media_team.members) | set(routing.supervisor.members)
    for key, acc in routing.accounts.items():
        for unit_key, unit in acc.units.items():
            titles.setdefault(unit.chat_id, f"{acc.name} — {unit.name}")
            people |= set(unit.officers)
    names = ["Budi", "Sari", "Andi", "Dewi", "Rina", "Agus", "Wati", "Yusuf", "Lina", "Hadi", "Tono", "Maya",
             "Eko", "Fitri", "Joko", "Nina", "Rudi", "Sinta"]
    for i, user_id in enumerate(sorted(people)):
        fake.add_user(user_id, names[i % len(names)], f"{names[i % len(names)].lower()}{user_id}")
    for chat_id, title in titles.items():
        fake.add_chat(chat_id, title=title)
    return titles


async def _wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    return None


class Officers:
    """Presses buttons in the fake Telegram as the people in routing.yaml would."""

    def __init__(self, fake: Any, runtime: Any):
        self.fake, self.runtime = fake, runtime

    def message_of(self, chat: int, ticket_id: int, needs: str = "") -> Any:
        key = f"t:{ticket_id}:{needs}"
        for message in reversed(self.fake.messages(chat)):  # the newest view of the ticket
            data = message.callback_data
            if needs and any(d == key or d.startswith(key + ":") for d in data):
                return message
            if not needs and (f"t:{ticket_id}:ack" in data or f"t:{ticket_id}:done" in data):
                return message
        return None

    async def press(self, chat: int, user: int, ticket_id: int, action: str, needs: str = "") -> None:
        """Press `action` on the ticket's message in `chat` (the button need not be drawn yet:
        a picker's choice is pressed as the picker would send it)."""
        message = await _wait(lambda: self.message_of(chat, ticket_id, needs))
        if message is None:  # shown in a batch: open it first, as an officer would
            batch = next((m for m in self.fake.messages(chat) if f"t:{ticket_id}:open" in m.callback_data), None)
            if batch is None:
                return
            self.fake.press_button(chat, batch.message_id, user, f"t:{ticket_id}:open")
            message = await _wait(lambda: self.message_of(chat, ticket_id, needs))
            if message is None:
                return
        before = len(self.fake.callback_answers)
        self.fake.press_button(chat, message.message_id, user, f"t:{ticket_id}:{action}", check=False)
        await _wait(lambda: len(self.fake.callback_answers) > before)
        await asyncio.sleep(0.1)

    async def reply(self, chat: int, user: int, ticket_id: int, text: str) -> None:
        message = await _wait(lambda: self.message_of(chat, ticket_id))
        if message is not None:
            self.fake.push_message(chat, user, text, reply_to_message_id=message.message_id)
            await asyncio.sleep(0.3)


ANSWERS = {
    "linjamsos": "Mohon maaf atas keterlambatannya. Penyaluran PKH tahap 4 bertahap per wilayah; data Anda sudah kami "
                 "teruskan ke pendamping PKH setempat untuk dicek. Status dapat dipantau di cekbansos.kemensos.go.id.",
    "pdn": "Terima kasih laporannya. Temuan harga di atas HET sudah kami teruskan ke dinas perdagangan setempat untuk "
           "pengawasan pasar minggu ini.",
}


# Alihkan: a unit hands a ticket to the unit that should answer it. The first candidate not
# already with its target unit is used (the default classifier is chosen per machine, so
# where a message lands first can differ).
MOVES = (("maksa beli paket sembako", "itjen"), ("kartu KKS rusak", "linjamsos"), ("kartu KKS rusak", "pfm"))
# Koreksi: the media team fixes a ticket's labels and unit (kept as training feedback).
CORRECTIONS = (("tetangga saya rumahnya 2 lantai", ("complaint", "negative"), "pusdatin"),
               ("tetangga saya rumahnya 2 lantai", ("complaint",), "pusdatin"))
NOTICE_NAMES = {"reminder": "pengingat tenggat", "nudge": "pengingat belum diterima",
                "escalated": "eskalasi ke pimpinan dan tim media"}
LABEL_CODES = {"complaint": "c", "question": "q", "negative": "n", "spam": "s"}
UNIT_NAMES = {"itjen": "Itjen", "linjamsos": "Linjamsos", "pfm": "PFM", "pusdatin": "Pusdatin"}


SURGE_ANSWER = ("Mohon maaf atas keterlambatannya. Penyaluran tahap 4 berjalan bertahap per wilayah; status dapat "
                "dipantau di cekbansos.kemensos.go.id. Bila lewat 14 hari belum cair, hubungi pendamping setempat.")


async def viral_post(runtime: Any, fake_instagram: Any, fake_telegram: Any, routing: Any, clock: SimClock,
                     comments: int = 60) -> tuple[list[str], int]:
    """A post goes viral: one card per group chat instead of a message per ticket, groups of
    similar complaints, and one group answer approved once and posted under each comment."""
    from tests.surge_texts import surge_comments  # the fakes' sibling: the demo runs from a checkout

    start = clock.now
    post = fake_instagram.add_media(routing.accounts["kemensos"].instagram_user_id,
                                    caption="Penyaluran bansos tahap 4 dimulai hari ini", timestamp=start)
    for i, (text, _) in enumerate(surge_comments(comments, seed=5)):
        fake_instagram.add_comment(post, text, f"warga.{i}", timestamp=start + timedelta(seconds=5 + 8 * i))
    clock.now = start + timedelta(seconds=15 + 8 * comments)
    fake_instagram.set_clock(clock.now.astimezone(timezone.utc))
    made = await runtime.poll_once()
    await _wait(lambda: not runtime.store.due_outbox(clock.now), timeout=40)
    tickets = [t for t in runtime.store.tickets_by_ids(made) if t.surge_id and t.unit]
    if not tickets:
        return [f"Unggahan baru dengan {comments} komentar: tidak menjadi lonjakan"], 0
    surge_id = int(tickets[0].surge_id or 0)
    groups = runtime.store.surges.groups(surge_id)
    chats = [c for c in {routing.media_team.chat_id, *(routing.accounts[t.account].units[t.unit].chat_id
                                                      for t in tickets if t.unit)}]
    cards = sum(1 for c in chats for m in fake_telegram.messages(c) if "Lonjakan" in (m.text or "").split("\n")[0])
    lines = [f"Unggahan viral: {comments} komentar dalam {comments * 8 // 60} menit → lonjakan #{surge_id}, "
             f"{len(tickets)} tiket dalam {len(groups)} kelompok; {cards} kartu lonjakan (satu per grup), "
             f"bukan {len(tickets)} pesan tiket"]
    unit_groups = [g for g in groups if g["unit"] and routing.accounts["kemensos"].units[g["unit"]].officers]
    if not unit_groups:
        return lines, len(tickets)
    group = unit_groups[0]
    unit = routing.accounts["kemensos"].units[group["unit"]]
    fake_telegram.push_message(unit.chat_id, unit.officers[0], f"/jawabkelompok {group['id']} {SURGE_ANSWER}")
    media = routing.media_team.chat_id
    draft = await _wait(lambda: next((m for m in fake_telegram.messages(media)
                                      if f"Draf jawaban untuk kelompok #{group['id']}" in (m.text or "")), None))
    if draft is None:
        return lines, len(tickets)
    fake_telegram.press_button(media, draft.message_id, routing.media_team.members[0], draft.callback_data[0])
    wanted = int(group["active"])
    await _wait(lambda: sum(SURGE_ANSWER in r.text for r in fake_instagram.sent_replies) >= wanted, timeout=60)
    posted = sum(SURGE_ANSWER in r.text for r in fake_instagram.sent_replies)
    lines.append(f"Kelompok #{group['id']} “{group['title']}” ({group['size']} tiket, {group['unit'].upper()}): "
                 f"petugas menulis satu jawaban (/jawabkelompok), tim media menekan Kirim sekali; "
                 f"{posted} balasan terbit di Instagram, satu di bawah setiap komentar")
    return lines, len(tickets)


def _ticket_with(store: Any, text: str) -> Any:
    return next((t for t in store.tickets() if text in t.text), None)


async def move_and_correct(runtime: Any, fake_telegram: Any, routing: Any) -> list[str]:
    """Alihkan by a unit's officer and Koreksi by the media team, as people would press them."""
    done: list[str] = []
    officers = Officers(fake_telegram, runtime)
    store = runtime.store
    for text, target in MOVES:
        ticket = _ticket_with(store, text)
        if ticket is None or ticket.unit in (None, target) or ticket.status != "open":
            continue
        unit = routing.accounts[ticket.account].units[ticket.unit]
        await officers.press(unit.chat_id, unit.officers[0], ticket.id, "move")
        await officers.press(unit.chat_id, unit.officers[0], ticket.id, f"move:{target}", needs="cancel")
        moved = store.ticket(ticket.id)
        if moved is not None and moved.unit == target:
            done.append(f"{ticket.unit.upper()}: petugas menekan Alihkan dan memindahkan tiket #{ticket.id} ke "
                        f"{UNIT_NAMES.get(target, target)}; tiket itu kini ada di grup unit tersebut")
        break
    media_chat, media_member = routing.media_team.chat_id, routing.media_team.members[0]
    for text, labels, target in CORRECTIONS:
        ticket = _ticket_with(store, text)
        if ticket is None or (tuple(sorted(ticket.labels)) == tuple(sorted(labels)) and ticket.unit == target):
            continue
        codes = "".join(LABEL_CODES[label] for label in labels)
        fake_telegram.push_message(media_chat, media_member, f"/tiket {ticket.id}")  # as the media team would
        await _wait(lambda: officers.message_of(media_chat, ticket.id, "fix"))
        await officers.press(media_chat, media_member, ticket.id, "fix", needs="fix")
        await officers.press(media_chat, media_member, ticket.id, f"fixok:{codes}.{target}", needs="fixok")
        fixed = store.ticket(ticket.id)
        if fixed is not None and set(fixed.labels) == set(labels):
            shown = " + ".join({"complaint": "keluhan", "negative": "negatif"}.get(x, x) for x in labels)
            done.append(f"Tim media menekan Koreksi pada tiket #{ticket.id}: label menjadi {shown}, unit "
                        f"{UNIT_NAMES.get(target, target)} (disimpan sebagai umpan balik pelatihan)")
        break
    return done


async def act_as_officers(runtime: Any, fake_telegram: Any, fake_instagram: Any, routing: Any) -> list[str]:
    """As people would: officers acknowledge and draft answers, the media team approves one,
    which the bot posts on Instagram."""
    done: list[str] = []
    officers = Officers(fake_telegram, runtime)
    media_member = routing.media_team.members[0]
    for account, unit_key in (("kemensos", "linjamsos"), ("kemendag", "pdn"), ("kemensos", "pusdatin")):
        tickets = [t for t in runtime.store.tickets(status="open", account=account, unit=unit_key)]
        unit = routing.accounts[account].units[unit_key]
        if not tickets or not unit.officers:
            continue
        officer, first = unit.officers[0], tickets[0]
        await officers.press(unit.chat_id, officer, first.id, "ack")
        done.append(f"{unit_key.upper()}: petugas menekan Terima pada tiket #{first.id}")
        answer = ANSWERS.get(unit_key)
        comment = next((t for t in tickets if t.channel == "comment"), None)
        if answer and comment is not None:
            await officers.reply(unit.chat_id, officer, comment.id, answer)
            done.append(f"{unit_key.upper()}: petugas membalas tiket #{comment.id} dengan draf jawaban")
            draft = await _wait(lambda: next((m for m in fake_telegram.messages(routing.media_team.chat_id)
                                              if f"Draf jawaban tiket #{comment.id}" in (m.text or "")), None))
            if draft is not None:
                fake_telegram.press_button(routing.media_team.chat_id, draft.message_id, media_member,
                                           draft.callback_data[0])
                if await _wait(lambda: any(r.text == answer for r in fake_instagram.sent_replies)):
                    done.append(f"Tim media menekan Kirim: jawaban tiket #{comment.id} terbit di Instagram")
    return done


def transcript(fake_telegram: Any, titles: dict[int, str], out: TextIO, per_chat: int = 5) -> None:
    """What each Telegram chat saw, group by group (the first messages of each, shortened)."""
    for chat_id, title in titles.items():
        messages = fake_telegram.messages(chat_id)
        if not messages:
            continue
        out.write(f"\n━━━ {title} — {len(messages)} pesan ━━━\n")
        for message in messages[:per_chat]:
            text = re.sub(r"\n{2,}", "\n", (message.text or f"[{message.kind}]").strip())
            lines = text.splitlines()
            shown = lines[:4] + (["…"] if len(lines) > 4 else [])
            buttons = [b["text"] for row in message.buttons for b in row]
            edited = " (diedit)" if message.edited else ""
            out.write("  ▸ " + "\n    ".join(shown) + edited + "\n")
            if buttons:
                out.write("    [" + "] [".join(buttons[:6]) + ("] …" if len(buttons) > 6 else "]") + "\n")
        if len(messages) > per_chat:
            out.write(f"  … dan {len(messages) - per_chat} pesan lainnya\n")


async def run_demo(out: TextIO = sys.stdout, *, serve_web: bool = False, port: int = 8765,
                   workdir: Path | None = None) -> dict[str, Any]:
    instagram_server, telegram_server = _fakes()
    from bot import reminders
    from bot.config import load_settings
    from bot.delivery import Limits
    from bot.runner import build_runtime, serve
    from classifiers.pipeline import load_classifier

    tmp = Path(workdir or tempfile.mkdtemp(prefix="triage-demo-"))
    clock = SimClock(DAY + timedelta(hours=10, minutes=5))  # 17:05 WIB: the day's messages are in
    summary: dict[str, Any] = {}
    minute = telegram_server.Window(20, DEMO_MINUTE)
    with instagram_server.FakeInstagram() as fake_ig, \
            telegram_server.FakeTelegram(BOT_TOKEN, flood=telegram_server.FloodLimits(group=minute)) as fake_tg:
        settings = load_settings(_env(fake_ig.url, fake_tg.base_url.removesuffix("/bot"), tmp / "demo.db"))
        routing = settings.routing
        for key, acc in routing.accounts.items():
            fake_ig.add_account(acc.instagram_user_id, key, TOKENS[key])
        fake_ig.set_clock(clock.now.astimezone(timezone.utc))
        summary["messages"] = seed_instagram(fake_ig, routing)
        titles = setup_telegram(fake_tg, routing)
        out.write(f"Demo: {summary['messages']} komentar dan DM hari ini untuk {len(routing.accounts)} akun; "
                  "memuat model klasifikasi…\n")
        classifier = load_classifier(routing.account_rules())
        runtime = build_runtime(settings, classifier=classifier, clock=clock,
                                limits=Limits(group_per_period=20, group_period=DEMO_MINUTE),
                                reply_gap=60.0 / routing.surges.replies_per_minute * DEMO_MINUTE / 60)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(runtime, stop, poll=False))
        web = None
        if serve_web:
            from bot.demo_web import demo_web_app, serve_demo_web

            web = await serve_demo_web(demo_web_app(fake_tg, titles, clock=clock), port=port)
            out.write(f"Halaman demo: http://127.0.0.1:{port}/ — buka sekarang; pesan mulai masuk dalam 8 detik "
                      "(Ctrl-C untuk berhenti)\n")
            out.flush()
        async def pause(seconds: float) -> None:
            if serve_web:  # paced, so that a person watching the page sees each step arrive
                await asyncio.sleep(seconds)

        try:
            await pause(8)
            made = await runtime.poll_once()
            summary["tickets"] = len(made)
            summary["spam"] = sum(1 for t in map(runtime.store.ticket, made) if t is not None and t.status == "spam")
            out.write(f"{summary['messages']} pesan dibaca: {len(made) - summary['spam']} tiket untuk unit (yang "
                      f"dihitung ringkasan harian), {summary['spam']} spam (dicatat, tidak diteruskan ke unit; tim "
                      f"media melihatnya dengan /spam), {summary['messages'] - len(made)} tanpa label (ucapan terima "
                      "kasih, dukungan: tidak perlu dijawab). Meneruskan ke grup Telegram…\n")
            await _wait(lambda: not runtime.store.due_outbox(clock.now), timeout=40)
            await pause(4)
            summary["actions"] = await act_as_officers(runtime, fake_tg, fake_ig, routing)
            summary["actions"] += await move_and_correct(runtime, fake_tg, routing)
            for line in summary["actions"]:
                out.write(f"  · {line}\n")
            await pause(4)
            surge_lines, summary["surge_tickets"] = await viral_post(runtime, fake_ig, fake_tg, routing, clock)
            summary["actions"] += surge_lines
            for line in surge_lines:
                out.write(f"  · {line}\n")
            await pause(4)
            from bot import surge_job

            await runtime.sweep(surge_job.sweep, DAY + timedelta(days=1, minutes=29))  # the quiet surge closes
            summary["digest_tuesday"] = await _send_digest(runtime, clock, DAY + timedelta(days=1, minutes=30))
            out.write("Jam dimajukan ke Selasa 07:30 WIB: ringkasan harian dikirim ke pimpinan "
                      f"({_overdue_phrase(summary['digest_tuesday'])})\n")
            for label, moment in (("Rabu 10:00", DAY + timedelta(days=2, hours=3)),
                                  ("Kamis 16:30", DAY + timedelta(days=3, hours=9, minutes=30))):
                await pause(4)
                clock.now = moment
                notices = await runtime.sweep(reminders.sweep, moment)
                told = ", ".join(
                    f"{name} untuk {len({t for n in mine for t in n.ticket_ids})} tiket di {len(mine)} grup"
                    for kind, name in NOTICE_NAMES.items() if (mine := [n for n in notices if n.kind == kind]))
                out.write(f"Jam dimajukan ke {label} WIB: {told or 'tidak ada pemberitahuan'}\n")
                await _wait(lambda: not runtime.store.due_outbox(clock.now), timeout=20)
            await pause(4)
            summary["digest"] = await _send_digest(runtime, clock, DAY + timedelta(days=4, minutes=30))
            out.write("Jam dimajukan ke Jumat 07:30 WIB: ringkasan harian dikirim ke pimpinan "
                      f"({_overdue_phrase(summary['digest'])})\n")
            await _wait(lambda: not runtime.store.due_outbox(clock.now), timeout=20)
            if serve_web:
                await stop.wait()
        finally:
            stop.set()
            await task
            if web is not None:
                await web.cleanup()
        transcript(fake_tg, titles, out)
        out.write("\n━━━ Ringkasan harian terakhir untuk pimpinan (Jumat 07:30 WIB, setelah eskalasi Kamis) ━━━\n")
        out.write(html.unescape(re.sub(r"<[^>]+>", "", summary.get("digest", ""))) + "\n")
        out.write(f"\nJawaban yang terbit di Instagram: {len(fake_ig.sent_replies)} balasan komentar, "
                  f"{len(fake_ig.sent_dms)} DM. Basis data demo: {tmp / 'demo.db'}\n")
    return summary


async def _send_digest(runtime: Any, clock: SimClock, moment: datetime) -> str:
    """The supervisor's morning digest at `moment` (07:30 on a working day)."""
    clock.now = moment
    from bot import digest_job

    return str(await runtime.sweep(digest_job.send_digest, clock.now))


def _overdue_phrase(digest_html: str) -> str:
    """What the digest says about overdue tickets, in a few words for the story line."""
    text = html.unescape(re.sub(r"<[^>]+>", "", digest_html))
    match = re.search(r"Lewat tenggat: ([\d.]+) tiket", text)
    return f"{match.group(1)} tiket lewat tenggat" if match else "belum ada tiket lewat tenggat"


def main(serve_web: bool = False, port: int = 8765) -> int:
    try:
        asyncio.run(run_demo(serve_web=serve_web, port=port))
    except KeyboardInterrupt:
        return 130
    return 0
