"""The one who-may-do-what check and the ticket state machine (pure, no I/O)."""

from __future__ import annotations

import pytest

from bot import callbacks, workflow
from bot.config import load_routing
from bot.triage import ACKNOWLEDGED, RESOLVED
from bot.workflow import Refused
from tests.conftest import ROUTING_FILE
from tests.test_telegram_ui import UTC, make_ticket

ROUTING = load_routing(ROUTING_FILE)
PFM_CHAT = ROUTING.accounts["kemensos"].units["pfm"].chat_id
PDN_CHAT = ROUTING.accounts["kemendag"].units["pdn"].chat_id
PFM_OFFICER = ROUTING.accounts["kemensos"].units["pfm"].officers[0]
MEDIA_MEMBER = ROUTING.media_team.members[0]


def scope(chat_id: int) -> workflow.ChatScope:
    found = workflow.chat_scope(ROUTING, chat_id)
    assert found is not None
    return found


def test_every_button_action_has_a_right() -> None:
    actions = {callbacks.parse(b.callback_data).action  # type: ignore[union-attr]
               for b in [callbacks.button("x", 1, a) for a in ("ack", "done", "fix", "cancel", "reveal", "hide",
                                                                  "open", "answer", "send", "edit", "spam_hide",
                                                                  "spam_show", "move")]}
    assert actions <= set(workflow.RIGHTS)


@pytest.mark.parametrize("action", sorted(workflow.RIGHTS))
def test_nothing_is_allowed_outside_the_chat_or_to_a_stranger(action: str) -> None:
    ticket = make_ticket(unit="pfm")
    officer = workflow.person(ROUTING, PFM_OFFICER)
    with pytest.raises(Refused, match="tidak ditangani di grup ini"):
        workflow.check_may(ROUTING, officer, scope(PDN_CHAT), ticket, action)  # the other ministry's group
    media = workflow.person(ROUTING, MEDIA_MEMBER)
    with pytest.raises(Refused):
        workflow.check_may(ROUTING, media, scope(PDN_CHAT), ticket, action)  # the media team too, outside its group
    with pytest.raises(Refused, match="belum terdaftar|tim media"):
        workflow.check_may(ROUTING, workflow.person(ROUTING, 9999), scope(PFM_CHAT), ticket, action)
    workflow.check_may(ROUTING, media, scope(ROUTING.media_team.chat_id), ticket, action)


def test_rights_by_role() -> None:
    ticket = make_ticket(unit="pfm")
    officer = workflow.person(ROUTING, PFM_OFFICER)
    for action in ("ack", "move", "done", "answer", "reveal", "note", "open", "hide", "cancel"):
        workflow.check_may(ROUTING, officer, scope(PFM_CHAT), ticket, action)
    for action in ("fix", "fixok", "send", "edit", "spam_hide"):
        with pytest.raises(Refused, match="tim media"):
            workflow.check_may(ROUTING, officer, scope(PFM_CHAT), ticket, action)
    with pytest.raises(Refused):
        workflow.check_may(ROUTING, officer, scope(PFM_CHAT), ticket, "drop_table")


def test_an_answer_resolves_only_an_active_ticket() -> None:
    who = workflow.person(ROUTING, MEDIA_MEMBER)
    now = make_ticket().created_at.astimezone(UTC)
    change = workflow.answered(make_ticket(status=ACKNOWLEDGED), who, now, "Sudah dicek.", {"draft_id": 1})
    assert change.columns["status"] == RESOLVED and change.kind == "answered"
    assert change.from_statuses == (workflow.OPEN, ACKNOWLEDGED)
    with pytest.raises(Refused, match="sudah selesai"):
        workflow.answered(make_ticket(status=RESOLVED), who, now, "Sudah dicek.", {})
