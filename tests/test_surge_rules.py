"""The surge rule and the surge texts, pure: figures in, decisions and Indonesian HTML out."""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone

from bot.surges import SurgeRule, card, figures, group_answer_view, group_view, summary, surge_item
from bot.triage import Ticket
from tests.test_telegram_ui import check_html

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
RULE = SurgeRule(window=timedelta(minutes=10), min_tickets=30, factor=5.0, quiet=timedelta(minutes=60))


def ticket(i: int, *, labels: tuple[str, ...] = ("complaint",), unit: str | None = "linjamsos", status: str = "open",
           group_id: int | None = 1, text: str = "PKH belum cair", resolved_at: datetime | None = None) -> Ticket:
    return Ticket(id=i, message_id=f"m{i}", account="kemensos", channel="comment", unit=unit, status=status,
                  labels=labels, scores={}, unit_source="keyword", lang="id", text=text, author_username=f"w{i}",
                  permalink=None, media_id="p1", conversation_id=None, received_at=NOW, created_at=NOW,
                  deadline=NOW + timedelta(days=3), acknowledged_by=None, acknowledged_at=None, resolved_by=None,
                  resolved_at=resolved_at, resolution_note=None, surge_id=1, group_id=group_id)


def test_a_post_surges_only_well_above_its_usual_rate_and_with_enough_tickets() -> None:
    assert not RULE.opens(29, 0)  # too few, however quiet the account usually is
    assert RULE.opens(30, 0)
    # 1,008 tickets a week is 1 per 10 minutes: 30 is 30 times that
    assert RULE.opens(30, 1008)
    # a busy account (100 per 10 minutes as usual): 300 is only 3 times that
    assert not RULE.opens(300, 100 * 1008)
    assert RULE.opens(500, 100 * 1008)


def test_a_surge_closes_after_a_quiet_hour() -> None:
    assert not RULE.closes(NOW, NOW + timedelta(minutes=59))
    assert RULE.closes(NOW, NOW + timedelta(minutes=60))


def test_figures_count_labels_units_and_the_negative_share() -> None:
    tickets = [ticket(1), ticket(2, labels=("complaint", "negative")), ticket(3, labels=("question",), unit="pusdatin",
                                                                            group_id=None),
               ticket(4, labels=("spam",), unit=None, status="spam", group_id=None),
               ticket(5, status="resolved", resolved_at=NOW + timedelta(minutes=12))]
    fig = figures(tickets)
    assert fig.total == 4 and fig.by_label == {"complaint": 3, "negative": 1, "question": 1}
    assert fig.by_unit == {"linjamsos": 3, "pusdatin": 1}
    assert fig.negative_share == 0.25 and fig.resolved == 1 and fig.ungrouped == 1
    s = summary({"opened_at": NOW.isoformat(), "last_ticket_at": (NOW + timedelta(minutes=40)).isoformat(),
                 "peak": 120}, fig, NOW + timedelta(hours=2))
    assert s["minutes"] == 40 and s["peak"] == 120 and s["answered_share"] == 0.25 and s["first_answer_minutes"] == 12


def test_the_card_escapes_what_citizens_and_captions_write_and_stays_within_telegram_limits() -> None:
    surge = {"id": 3, "account": "kemensos", "media_id": "p1", "caption": "<b>Bansos</b> & BLT " + "x" * 500,
             "permalink": "https://www.instagram.com/p/abc/?a=1&b=\"2\"", "opened_at": NOW.isoformat(),
             "last_ticket_at": NOW.isoformat(), "closed_at": None, "peak": 640, "summary": None}
    groups = [{"id": g, "title": f"pkh <belum> cair {g}", "size": 700 - g, "active": 600, "unit": "linjamsos"}
              for g in range(1, 10)]
    text, buttons = card(surge, figures([ticket(i) for i in range(50)]), groups, account_name="Kementerian Sosial",
                         unit_names={"linjamsos": "Ditjen Linjamsos"}, examples={1: "<script>saya</script>" * 40},
                         tz="Asia/Jakarta", window_minutes=10)
    check_html(text)
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "Lonjakan komentar" in text and "640 per 10 menit" in text and "… dan 3 kelompok lain" in text
    assert len(text.encode("utf-16-le")) // 2 <= 4096
    assert [b.callback_data for row in buttons for b in row] == [f"g:{g}:view" for g in range(1, 7)]
    closed = dict(surge, closed_at=NOW.isoformat(), summary={"tickets": 50, "minutes": 95, "peak": 640,
                                                              "answered_share": 0.5, "first_answer_minutes": 12})
    text, _ = card(closed, figures([ticket(1)]), [], account_name="Kemensos", unit_names={}, examples={},
                   tz="Asia/Jakarta", window_minutes=10)
    assert "Lonjakan selesai" in text and "1 jam 35 menit" in text and "50,0%" in text and "12 menit" in text
    lead, line = surge_item(closed, 50, "Kementerian Sosial", "Asia/Jakarta")
    assert lead.startswith("Lonjakan #3 · Kementerian Sosial") and "terjawab 50,0%" in line


def test_the_group_view_masks_personal_data_and_offers_the_group_actions() -> None:
    tickets = [ticket(i, text=f"PKH belum cair NIK 32760123456700{i:02d}") for i in range(1, 31)]
    text, buttons = group_view({"id": 7, "surge_id": 1, "title": "pkh belum cair", "unit": "linjamsos"}, tickets,
                               [{"id": 2, "status": "approved"}], {2: {"sent": 10, "queued": 20}},
                               unit_name="Ditjen Linjamsos", tz="Asia/Jakarta", now=NOW)
    check_html(text)
    assert "3276012345670001" not in html.unescape(text) and "30 tiket: 30 baru" in text
    assert "terkirim 10, menunggu 20" in text and "… dan 5 tiket lainnya" in text
    assert [b.callback_data for row in buttons for b in row] == ["g:7:ack", "g:7:move", "g:7:done", "g:7:answer"]
    done, none = group_view({"id": 7, "surge_id": 1, "title": "", "unit": "linjamsos"},
                            [ticket(1, status="resolved")], [], {}, unit_name=None, tz="Asia/Jakarta", now=NOW)
    assert none == []


def test_a_group_answer_says_how_long_posting_takes_and_offers_a_retry_for_failures() -> None:
    answer = {"id": 4, "text": "Terima kasih <3", "status": "pending"}
    group = {"id": 7, "title": "pkh belum cair"}
    text, buttons = group_answer_view(answer, group, 600, "Budi", {}, None, 30)
    check_html(text)
    assert "sekitar 20 menit" in text and "Terima kasih &lt;3" in text
    assert buttons[0][0].callback_data == "ga:4:send" and "600" in buttons[0][0].text
    text, buttons = group_answer_view(dict(answer, status="approved"), group, 600, "Budi",
                                      {"sent": 590, "failed": 10}, "Sari", 30)
    assert "Disetujui oleh Sari" in text and buttons[0][0].callback_data == "ga:4:retry"
