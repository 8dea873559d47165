"""Surges as jobs: open them while triaging, group their tickets, keep their cards current, close them.

Triage asks `open_new_surges` before it makes tickets, so the comments of a post that
surges never go out one message each: their tickets join the surge, and the media
team and each unit concerned get one card, sent once and then edited in place (at
most once per `card_edit_seconds` per group). Everything is read from and written to
the store, so a restart picks up where the last run stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from bot import grouping, surges
from bot.callbacks import to_payload
from bot.config import RoutingConfig, Settings
from bot.pii import mask_pii
from bot.service import ticket_destinations
from bot.store import CARD, EDIT, TEXT, Store
from bot.surges import SurgeRule
from bot.triage import SPAM, Ticket

log = logging.getLogger(__name__)


def rule_of(routing: RoutingConfig) -> SurgeRule:
    return SurgeRule.from_config(routing.surges)


def open_new_surges(settings: Settings, store: Store, *, now: datetime) -> list[int]:
    """Open a surge for every post whose comments waiting for triage make it surge (bot.surges)."""
    rule = rule_of(settings.routing)
    already = store.surges.open_surges()
    opened = []
    for account, media_id, count in store.surges.busy_posts(now - rule.window, now, rule.min_tickets):
        if (account, media_id) in already or account not in settings.routing.accounts:
            continue
        usual = store.surges.ticket_count(account, now - surges.BASELINE - rule.window, now - rule.window)
        if rule.opens(count, usual):
            surge_id = store.surges.open_surge(account, media_id, since=now - rule.window, now=now)
            log.info("surge #%s opened: post %s of %s, %s comments in %s", surge_id, media_id, account,
                        count, rule.window)
            opened.append(surge_id)
    return opened


def watch_accounts(settings: Settings, store: Store, *, now: datetime) -> list[str]:
    """The same rule over a whole account: many posts busy at once, none surging on its own.
    Tickets still go out one by one (batched); the media team hears of it once an hour."""
    rule = rule_of(settings.routing)
    surging = {account for account, _ in store.surges.open_surges()}
    told = []
    for account, acc in settings.routing.accounts.items():
        if account in surging:
            continue
        recent = store.surges.ticket_count(account, now - rule.window, now + timedelta(seconds=1))
        usual = store.surges.ticket_count(account, now - surges.BASELINE - rule.window, now - rule.window)
        if not rule.opens(recent, usual) or store.has_recent_alert("account_surge", account, now - timedelta(hours=1)):
            continue
        store.add_alert("account_surge", surges.account_surge_text(acc.name, recent, rule.usual_per_window(usual),
                                                                    settings.routing.surges.window_minutes),
                        now=now, account=account)
        told.append(account)
    return told


def surge_of(open_surges: dict[tuple[str, str], int], account: str, channel: str, media_id: str | None) -> int | None:
    if channel != "comment" or media_id is None:
        return None
    return open_surges.get((account, media_id))


async def after_triage(settings: Settings, store: Store, made: Sequence[int], *,
                       now: datetime, client_for: Callable[[str], Awaitable[Any]] | None = None) -> None:
    """Group the surges' new tickets, refresh their cards, offer answers to late arrivals."""
    if client_for is not None:
        await fill_post_details(store, client_for)
    rule = rule_of(settings.routing)
    fresh: dict[int, int] = defaultdict(int)
    for ticket in store.tickets_by_ids(list(made)):
        if ticket.surge_id is not None and ticket.status != SPAM:
            fresh[ticket.surge_id] += 1
    for surge in store.surges.open_surge_rows():
        surge_id = int(surge["id"])
        if fresh.get(surge_id):
            store.surges.touch(surge_id, now, store.surges.rate(surge_id, now - rule.window, now + rule.window))
        if _came_to_nothing(store, surge_id, rule, now):
            _release(settings, store, surge_id, now)
            continue
        await group_new_tickets(store, surge_id, now=now)
        queue_cards(settings, store, surge_id, now=now)
        offer_answer_to_late_arrivals(settings, store, surge_id, now=now)


def _came_to_nothing(store: Store, surge_id: int, rule: SurgeRule, now: datetime) -> bool:
    """Its comments turned out to be spam or praise: too few tickets, and no card shown yet."""
    tickets = [t for t in store.surges.tickets(surge_id) if t.status != SPAM]
    return len(tickets) < rule.min_tickets and not _card_rows(store, surge_id)


def _release(settings: Settings, store: Store, surge_id: int, now: datetime) -> None:
    """The tickets of a surge that came to nothing go out one by one, as they would have."""
    for ticket in store.tickets_by_ids(store.surges.release(surge_id)):
        for key, chat_id, kind in ticket_destinations(settings.routing, ticket.id, ticket.account, ticket.unit):
            store.enqueue(key, chat_id, kind, now=now, ticket_id=ticket.id)
    log.info("surge #%s released: too few tickets", surge_id)


# -- grouping ----------------------------------------------------------------------


async def group_new_tickets(store: Store, surge_id: int, *, now: datetime) -> int:
    """Put the surge's ungrouped complaints and questions into groups by meaning: into the
    nearest existing group of their unit when close enough, else into new groups."""
    by_unit: dict[str | None, list[Ticket]] = defaultdict(list)
    for ticket in store.surges.ungrouped(surge_id):
        by_unit[ticket.unit].append(ticket)
    placed = 0
    for unit, tickets in by_unit.items():
        # n-gram vectors even where the transformer classifies: on generated surges of 2,000
        # comments they grouped at ARI 0.87 in under 2 s, the fine-tuned transformer's
        # embeddings at 0.58 in 100 s (tests/bench/bench_grouping.py): they tell labels apart,
        # not topics.
        vectors, kind = await asyncio.to_thread(grouping.text_vectors, [t.text for t in tickets], None)
        placed += _place(store, surge_id, unit, tickets, vectors, kind, now)
    return placed


def _place(store: Store, surge_id: int, unit: str | None, tickets: list[Ticket], vectors: np.ndarray, kind: str,
           now: datetime) -> int:
    cfg = grouping.settings_for(kind)
    existing = [g for g in store.surges.groups(surge_id) if g["unit"] == unit and g["vector_kind"] == kind]
    rest = list(range(len(tickets)))
    if existing:
        centroids = np.stack([grouping.from_blob(g["centroid"]) for g in existing])
        nearest = grouping.nearest_groups(vectors, centroids, cfg.join_at)
        joined: dict[int, list[int]] = defaultdict(list)
        for i, g in enumerate(nearest):
            if g is not None:
                joined[g].append(i)
        for g, rows in joined.items():
            group = existing[g]
            mean = centroids[g] * int(group["size"]) + vectors[rows].sum(axis=0)
            store.surges.join_group(int(group["id"]), [tickets[i].id for i in rows], grouping.to_blob(
                grouping.centroid(mean[None, :])), now)
        rest = [i for i, g in enumerate(nearest) if g is None]
    placed = len(tickets) - len(rest)
    if len(rest) >= cfg.min_size:
        for rows in grouping.new_groups(vectors[rest], cfg):
            members = [rest[i] for i in rows]
            title = grouping.group_title([tickets[i].text for i in members])
            store.surges.add_group(surge_id, tickets[0].account, unit, title, kind,
                                   grouping.to_blob(grouping.centroid(vectors[members])),
                                   [tickets[i].id for i in members], now)
            placed += len(members)
    return placed


# -- the card ------------------------------------------------------------------------


def card_chats(settings: Settings, store: Store, surge_id: int) -> list[int]:
    """The media team, and the group of every unit with tickets in the surge."""
    routing = settings.routing
    chats = [routing.media_team.chat_id]
    for account, unit in store.surges.units(surge_id):
        chat = routing.accounts[account].units[unit].chat_id if account in routing.accounts and \
            unit in routing.accounts[account].units else None
        if chat is not None and chat not in chats:
            chats.append(chat)
    return chats


def _card_rows(store: Store, surge_id: int) -> bool:
    return store.has_outbox_prefix(f"surge:{surge_id}:card:")


def queue_cards(settings: Settings, store: Store, surge_id: int, *, now: datetime, final: bool = False) -> None:
    """Send the card where it was not sent yet; edit it where it was (once per edit period,
    or once more when the surge closes)."""
    period = settings.routing.surges.card_edit_seconds
    bucket = "closed" if final else str(int(now.timestamp()) // period)
    for chat in card_chats(settings, store, surge_id):
        card_key = f"surge:{surge_id}:card:{chat}"
        payload: dict[str, object] = {"surge_id": surge_id, "card_key": card_key}
        if store.enqueue(card_key, chat, CARD, now=now, payload=payload):
            continue
        store.enqueue(f"surge:{surge_id}:edit:{chat}:{bucket}", chat, EDIT, now=now,
                      payload=dict(payload, shows="card"))


def render_card(settings: Settings, store: Store, surge_id: int) -> tuple[str, list[list[Any]]] | None:
    surge = store.surges.surge(surge_id)
    if surge is None:
        return None
    account = settings.routing.accounts.get(surge["account"])
    tickets = store.surges.tickets(surge_id)
    groups = store.surges.groups(surge_id)
    examples = {}
    for g in groups[: surges.MAX_CARD_GROUPS]:
        example = store.ticket(int(g["example_ticket_id"])) if g["example_ticket_id"] else None
        examples[int(g["id"])] = mask_pii(example.text) if example else ""
    unit_names = {k: u.name for k, u in account.units.items()} if account else {}
    return surges.card(surge, surges.figures(tickets), groups, account_name=account.name if account else surge["account"],
                       unit_names=unit_names, examples=examples, tz=settings.routing.timezone,
                       window_minutes=settings.routing.surges.window_minutes)


# -- answers for tickets that came later ----------------------------------------------


def offer_answer_to_late_arrivals(settings: Settings, store: Store, surge_id: int, *, now: datetime) -> int:
    """A ticket that joins a group already answered is offered the same answer (media team)."""
    offered = 0
    for group in store.surges.groups(surge_id):
        answers = [a for a in store.surges.answers_of(int(group["id"])) if a["status"] in ("approved", "done")]
        if not answers:
            continue
        answer = answers[-1]
        late = store.surges.unanswered_in_group(int(group["id"]), int(answer["id"]))
        if not late:
            continue
        text, buttons = surges.late_arrivals_view(answer, group, len(late))
        if store.enqueue(f"ga:{answer['id']}:late:{max(late)}", settings.routing.media_team.chat_id, TEXT, now=now,
                         payload={"text": text, "buttons": to_payload(buttons)}):
            offered += len(late)
    return offered


# -- the sweep: closing quiet surges ----------------------------------------------------


def sweep(settings: Settings, store: Store, *, now: datetime) -> list[int]:
    """Close each surge whose post has been quiet long enough; its card shows the summary.
    Also a CLI command (`triage surges --now`)."""
    rule = rule_of(settings.routing)
    closed = []
    for surge in store.surges.open_surge_rows():
        last = datetime.fromisoformat(surge["last_ticket_at"] or surge["opened_at"])
        if not rule.closes(last, now):
            continue
        fig = surges.figures(store.surges.tickets(int(surge["id"])))
        if store.surges.close(int(surge["id"]), now, surges.summary(surge, fig, now)):
            queue_cards(settings, store, int(surge["id"]), now=now, final=True)
            closed.append(int(surge["id"]))
            log.info("surge #%s closed", surge["id"])
    return closed


async def fill_post_details(store: Store, client_for: Callable[[str], Awaitable[Any]]) -> None:
    """The card names the post: its caption and link, read once from Instagram per surge."""
    for surge in store.surges.open_surge_rows():
        if surge.get("caption") is not None:
            continue
        try:
            client = await client_for(surge["account"])
            media = await client.media(surge["media_id"])
        except Exception as err:  # the card still works without the caption; it is tried again next poll
            log.warning("surge #%s: could not read post %s: %s", surge["id"], surge["media_id"], err)
            continue
        store.surges.set_post(int(surge["id"]), media.caption, media.permalink)
