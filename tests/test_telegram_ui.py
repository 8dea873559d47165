"""The Telegram rendering layer: escaping, limits, buttons, callback data, dates."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest

from bot import telegram_ui as ui
from bot.callbacks import Callback, toggle_label
from bot.callbacks import parse as parse_callback
from bot.store import Ticket
from bot.triage import ACKNOWLEDGED, OPEN, RESOLVED, SPAM

UTC = timezone.utc
JKT = "Asia/Jakarta"
NOW = datetime(2025, 11, 25, 3, 0, tzinfo=UTC)  # Selasa 25 Nov 10.00 WIB
UNITS = [("linjamsos", "Ditjen Perlindungan dan Jaminan Sosial"), ("pfm", "Ditjen Penanganan Fakir Miskin"),
         ("pusdatin", "Pusat Data dan Informasi Kesejahteraan Sosial"), ("humas", "Biro Hubungan Masyarakat")]
PII_TEXT = "min BPNT saya belum cair, NIK 3276010101010001 wa 081234567890"


def make_ticket(**changes: Any) -> Ticket:
    base = Ticket(
        id=123, message_id="m-123", account="kemensos", channel="comment", unit="pfm", status=OPEN,
        labels=("complaint", "question"), scores={"complaint": 0.92, "question": 0.814, "negative": 0.1, "spam": 0.01},
        unit_source="model", lang="id", text="min BPNT tahap 2 kok belum cair ya?", author_username="warga.jkt",
        permalink="https://www.instagram.com/p/AbC123/c/17850000000000011/", media_id="17900000000000002",
        conversation_id=None, received_at=datetime(2025, 11, 24, 1, 0, tzinfo=UTC),
        created_at=datetime(2025, 11, 24, 1, 1, tzinfo=UTC), deadline=datetime(2025, 11, 27, 7, 5, tzinfo=UTC),
        acknowledged_by=None, acknowledged_at=None, resolved_by=None, resolved_at=None, resolution_note=None,
    )
    return replace(base, **changes)


ACKED = {"status": ACKNOWLEDGED, "acknowledged_by": 7201, "acknowledged_at": datetime(2025, 11, 24, 2, 12, tzinfo=UTC)}
RESOLVED_BY = {**ACKED, "status": RESOLVED, "resolved_by": 7201,
               "resolved_at": datetime(2025, 11, 25, 3, 0, tzinfo=UTC), "resolution_note": "sudah dijawab lewat DM"}
PEOPLE = {7201: "Budi"}


def render_ticket(ticket: Ticket, **kw: Any) -> ui.Rendered:
    kw.setdefault("account_name", "Kementerian Sosial")
    kw.setdefault("unit_name", "Ditjen Penanganan Fakir Miskin")
    kw.setdefault("tz", JKT)
    return ui.ticket_message(ticket, **kw)


class _TagChecker(HTMLParser):
    """Telegram accepts only a few tags, and they must be balanced."""

    ALLOWED = {"b", "i", "a", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.ALLOWED, f"unexpected tag <{tag}>"
        for name, value in attrs:
            assert (tag, name) == ("a", "href") or (tag, name) == ("blockquote", "expandable"), (tag, name)
            if name == "href":
                assert (value or "").startswith(("https://", "tg://user?id=")), value
        self.stack.append(tag)
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()


def check_html(text: str) -> list[str]:
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert not checker.stack, f"unclosed tags {checker.stack}"
    assert ui._u16(text) <= ui.MAX_TEXT
    return checker.tags


def all_buttons(rendered: ui.Rendered) -> list[ui.Button]:
    return [b for row in rendered.buttons for b in row]


def callbacks(rendered: ui.Rendered) -> list[str]:
    return [b.callback_data for b in all_buttons(rendered)]


# -- escaping ---------------------------------------------------------------------

NASTY = 'lihat <b>ini</b> & <script>alert("x")</script> <a href="javascript:x">klik</a>'


def test_user_text_is_escaped_everywhere() -> None:
    t = make_ticket(text=NASTY, author_username="<i>bad</i>", **{**RESOLVED_BY, "resolution_note": "<b>&"})
    outputs = [
        render_ticket(t, people={7201: "<Budi & co>"}),
        ui.mirror_message(t, account_name="A & B", unit_name="<PFM>", tz=JKT),
        ui.batch_message([t], "<PFM>", JKT),
        ui.queue_message([t], JKT, "<Antrian>"),
        ui.ticket_detail(t, [{"at": "2025-11-24T01:01:00+00:00", "actor": "<x>", "kind": "<k>", "detail": {}}], JKT,
                         account_name="A", unit_name="B"),
        ui.search_results([t], "<script>", JKT),
        ui.spam_list([replace(t, status=SPAM)], JKT),
        ui.unit_picker(t, [("pfm", "<PFM>"), ("humas", "Humas & Co")]),
        ui.correction_picker(t, [("pfm", "<PFM>")], ["complaint"], "pfm"),
        ui.reminder_message(t, "<2 jam>", "<Budi>", tz=JKT, acknowledged_by_id=7201),
        ui.nudge_message([t], "<PFM>", JKT, waited_text="<4 jam>"),
        ui.escalation_message(t, account_name="<A>", unit_name="<U>", tz=JKT, now=NOW),
        ui.alert_message("Token <akun> & kedaluwarsa", title="<judul>"),
    ]
    for r in outputs:
        check_html(r.text)
        assert "<script>" not in r.text
        assert "<b>ini</b>" not in r.text
    first = outputs[0].text
    assert "&lt;script&gt;" in first and "&amp;" in first
    assert "@&lt;i&gt;bad&lt;/i&gt;" in first
    assert "&lt;Budi &amp; co&gt;" in first


def test_search_highlight_escapes_the_query() -> None:
    t = make_ticket(text="ada <b> di sini dan <B> lagi")
    r = ui.search_results([t], "<b>", JKT)
    check_html(r.text)
    assert r.text.count("<b>&lt;b&gt;</b>") == 1
    assert "<b>&lt;B&gt;</b>" in r.text


def test_link_only_for_https_permalinks() -> None:
    r = render_ticket(make_ticket(permalink='javascript:alert(1)"'))
    assert "javascript" not in r.text
    dm = render_ticket(make_ticket(channel="dm", permalink=None, conversation_id="c1"))
    assert ui.INBOX_URL in dm.text and "DM" in dm.text


# -- length limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "kata " * 20_000,  # 100 kB of words
        "&" * 100_000,  # each character grows fivefold when escaped
        "x" * 100_000,  # no word boundary at all
        "🙏 mohon " * 12_000,  # astral characters count twice for Telegram
    ],
)
def test_long_text_is_cut_within_4096(text: str) -> None:
    r = render_ticket(make_ticket(text=text))
    check_html(r.text)
    assert "…" in r.text
    assert ">baca selengkapnya</a>" in r.text
    assert "Batas: Kamis 27 Nov 14.05 WIB" in r.text  # the lines after the text survive
    assert len(r.text) > 3000  # the room is used


def test_cut_happens_at_a_word_boundary() -> None:
    r = render_ticket(make_ticket(text="bansos " * 2000))
    quoted = r.text.split("<blockquote expandable>")[1].split("…")[0]
    assert quoted.endswith("bansos")


def test_cut_never_reveals_part_of_a_nik() -> None:
    for filler in range(3600, 4000, 23):
        r = render_ticket(make_ticket(text="a" * filler + " 3276010101010001 " + "b " * 1000))
        assert "32760101" not in r.text
        assert "010101" not in r.text


def test_lists_and_history_stay_within_4096() -> None:
    long = make_ticket(text="&<" * 5000)
    many = [replace(long, id=i, deadline=NOW + timedelta(hours=i)) for i in range(1, 200)]
    for r in [
        ui.queue_message(many, JKT, "Antrian", now=NOW),
        ui.search_results(many, "&", JKT),
        ui.spam_list([replace(t, status=SPAM) for t in many], JKT),
        ui.nudge_message(many, "PFM", JKT),
        ui.alert_message("x " * 5000),
    ]:
        check_html(r.text)
        assert len(all_buttons(r)) <= ui.MAX_LIST_ITEMS
    events = [{"at": f"2025-11-24T0{i % 10}:00:00+00:00", "actor": "7201", "kind": "acknowledged", "detail": {}}
              for i in range(500)]
    detail = ui.ticket_detail(long, events, JKT, account_name="Kemensos", unit_name="PFM", people=PEOPLE)
    check_html(detail.text)
    assert "catatan sebelumnya" in detail.text


# -- batch ---------------------------------------------------------------------------


def test_batch_message_limits() -> None:
    tickets = [make_ticket(id=1000 + i, text="&<> " * 300) for i in range(50)]
    r = ui.batch_message(tickets, "PFM", JKT)
    check_html(r.text)
    assert r.text.startswith("📥 <b>50 tiket baru untuk PFM</b>")
    shown = callbacks(r)
    assert 0 < len(shown) <= 20
    assert shown == [f"t:{1000 + i}:open" for i in range(len(shown))]
    assert all(b.text == f"Buka #{b.callback_data.split(':')[1]}" for b in all_buttons(r))
    assert f"… dan {50 - len(shown)} tiket lainnya" in r.text


def test_small_batch_shows_all_with_deadlines() -> None:
    tickets = [make_ticket(id=i) for i in (1, 2, 3)]
    r = ui.batch_message(tickets, "PFM", JKT)
    assert "3 tiket baru untuk PFM" in r.text
    assert r.text.count("batas: Kamis 27 Nov 14.05 WIB") == 3
    assert "lainnya" not in r.text
    assert callbacks(r) == ["t:1:open", "t:2:open", "t:3:open"]


# -- buttons and callback data ---------------------------------------------------------


def test_buttons_per_status() -> None:
    assert [b.text for b in all_buttons(render_ticket(make_ticket()))] == ["Terima", "Alihkan", "Jawab", "Selesai", "Koreksi"]
    assert [b.text for b in all_buttons(render_ticket(make_ticket(**ACKED)))] == ["Jawab", "Alihkan", "Selesai", "Koreksi"]
    assert [b.text for b in all_buttons(render_ticket(make_ticket(**RESOLVED_BY)))] == ["Koreksi"]
    spam = make_ticket(status=SPAM, labels=("spam",), unit=None, deadline=None)
    assert callbacks(render_ticket(spam, unit_name=None)) == ["t:123:fix"]
    assert callbacks(render_ticket(make_ticket())) == ["t:123:ack", "t:123:move", "t:123:answer", "t:123:done", "t:123:fix"]


def test_mirror_has_the_same_buttons() -> None:
    for changes in ({}, ACKED, RESOLVED_BY, {"text": PII_TEXT}):
        t = make_ticket(**changes)
        mirror = ui.mirror_message(t, account_name="Kemensos", unit_name="PFM", tz=JKT)
        assert callbacks(mirror) == callbacks(render_ticket(t))
        assert "Koreksi" in [b.text for b in all_buttons(mirror)]


def test_callback_data_fits_64_bytes_for_every_action() -> None:
    long_unit = "u" * 20
    units = [(long_unit, "Unit panjang"), ("pfm", "PFM")]
    for ticket_id in (1, 999_999_999_999):
        for changes in ({}, ACKED, RESOLVED_BY):
            t = make_ticket(id=ticket_id, unit=long_unit, text=PII_TEXT, **changes)
            rendered = [render_ticket(t), render_ticket(t, masked=False), ui.unit_picker(make_ticket(id=ticket_id), units),
                        ui.batch_message([t], "PFM", JKT)]
            for n in range(5):
                for labels in itertools.combinations(ui.LABEL_NAMES, n):
                    rendered.append(ui.correction_picker(t, units, labels, long_unit))
            for r in rendered:
                for data in callbacks(r):
                    assert len(data.encode()) <= 64, data
                    parsed = parse_callback(data)
                    assert parsed is not None and parsed.target == ticket_id, data


def test_largest_ids_fit_with_the_configured_unit_keys() -> None:
    keys = ["linjamsos", "pusdatin", "bappebti", "humas"]
    t = make_ticket(id=2**63 - 1, unit="linjamsos")
    r = ui.correction_picker(t, [(k, k) for k in keys], ["complaint", "question", "negative"], "linjamsos")
    assert max(len(d.encode()) for d in callbacks(r)) <= 64


def test_button_rejects_oversized_callback_data() -> None:
    with pytest.raises(ValueError):
        ui.Button("x", "t:1:move:" + "u" * 60)
    with pytest.raises(ValueError):
        ui.Button("x", "")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("t:5:ack", Callback(5, "ack")),
        ("t:5:move", Callback(5, "move")),
        ("t:5:move:pusdatin", Callback(5, "move", "pusdatin")),
        ("t:5:open", Callback(5, "open")),
        ("t:5:reveal", Callback(5, "reveal")),
        ("t:5:fixl:spam:cq.pfm", Callback(5, "fixl", "spam", ("complaint", "question"), "pfm")),
        ("t:5:fixu:humas:n", Callback(5, "fixu", "humas", ("negative",))),
        ("t:5:fixok:s.", Callback(5, "fixok", None, ("spam",), None)),
        ("t:5:fixok:.humas", Callback(5, "fixok", None, (), "humas")),
    ],
)
def test_parse_callback(data: str, expected: ui.Callback) -> None:
    assert parse_callback(data) == expected


@pytest.mark.parametrize(
    "data",
    ["", "x:5:ack", "t:abc:ack", "t:0:ack", "t:5", "t:5:nuke", "t:5:ack:1", "t:5:move:Bad-Key", "t:5:fixl:love:.pfm",
     "t:5:fixok", "t:5:fixok:cq", "t:5:fixok:xyz.pfm", "t:5:fixu:pfm:zz", "t:-5:ack", "t:5:move:a:b"],
)
def test_parse_callback_rejects_malformed(data: str) -> None:
    assert parse_callback(data) is None


def test_correction_picker_is_stateless() -> None:
    t = make_ticket()
    r = ui.correction_picker(t, UNITS)
    by_text = {b.text: b.callback_data for b in all_buttons(r)}
    assert by_text["✅ Keluhan"] == "t:123:fixl:complaint:cq.pfm"
    assert by_text["⬜ Negatif"] == "t:123:fixl:negative:cq.pfm"
    assert by_text["✅ Ditjen Penanganan Fakir Miskin"] == "t:123:fixu:pfm:cq"
    assert by_text["Simpan"] == "t:123:fixok:cq.pfm" and by_text["Batal"] == "t:123:cancel"
    # pressing Negatif, then Pusdatin, then Simpan
    labels, unit = parse_callback(by_text["⬜ Negatif"]).selection()  # type: ignore[union-attr]
    assert (labels, unit) == (("complaint", "question", "negative"), "pfm")
    r = ui.correction_picker(t, UNITS, labels, unit)
    pick = next(b for b in all_buttons(r) if b.text == "Pusat Data dan Informasi Kesejahteraan Sosial")
    labels, unit = parse_callback(pick.callback_data).selection()  # type: ignore[union-attr]
    assert unit == "pusdatin"
    r = ui.correction_picker(t, UNITS, labels, unit)
    save = next(b for b in all_buttons(r) if b.text == "Simpan")
    assert parse_callback(save.callback_data).selection() == (labels, "pusdatin")  # type: ignore[union-attr]
    assert "Label: Keluhan, Pertanyaan, Negatif" in r.text


def test_spam_stands_alone_in_the_picker() -> None:
    assert toggle_label(("complaint", "question"), "spam") == ("spam",)
    assert toggle_label(("spam",), "question") == ("question",)
    assert toggle_label(("complaint", "question"), "question") == ("complaint",)
    r = ui.correction_picker(make_ticket(), UNITS, ["spam"], "pfm")
    assert not any(d.split(":")[2] == "fixu" for d in callbacks(r))
    assert "t:123:fixok:s." in callbacks(r)
    assert "tidak diteruskan ke unit" in r.text


def test_unit_picker_offers_other_units_and_cancel() -> None:
    r = ui.unit_picker(make_ticket(), UNITS)
    assert callbacks(r) == ["t:123:move:linjamsos", "t:123:move:pusdatin", "t:123:move:humas", "t:123:cancel"]
    assert all_buttons(r)[-1].text == "Batal"
    assert "Ditjen Penanganan Fakir Miskin" in r.text


def test_reply_markup_is_bot_api_json() -> None:
    markup = render_ticket(make_ticket()).reply_markup()
    assert markup is not None
    assert markup["inline_keyboard"][0][0] == {"text": "Terima", "callback_data": "t:123:ack"}
    assert ui.help_text("officer").reply_markup() is None


# -- masked and revealed text -------------------------------------------------------------


def test_masked_by_default_with_reveal_button() -> None:
    r = render_ticket(make_ticket(text=PII_TEXT))
    assert "3276********0001" in r.text and "0812*****890" in r.text
    assert "3276010101010001" not in r.text and "081234567890" not in r.text
    assert "Data pribadi disamarkan" in r.text
    assert ("Lihat data pribadi", "t:123:reveal") in [(b.text, b.callback_data) for b in all_buttons(r)]


def test_revealed_text_and_hide_button() -> None:
    r = render_ticket(make_ticket(text=PII_TEXT), masked=False)
    assert "3276010101010001" in r.text and "081234567890" in r.text
    assert "t:123:hide" in callbacks(r) and "t:123:reveal" not in callbacks(r)


def test_no_reveal_without_pii_or_when_not_allowed() -> None:
    assert "t:123:reveal" not in callbacks(render_ticket(make_ticket()))
    assert "t:123:reveal" not in callbacks(render_ticket(make_ticket(text=PII_TEXT), show_reveal=False))
    assert "t:123:reveal" not in callbacks(render_ticket(make_ticket(text=PII_TEXT, **RESOLVED_BY)))


def test_every_excerpt_is_masked() -> None:
    t = make_ticket(text=PII_TEXT, deadline=NOW - timedelta(hours=1))
    for r in [ui.mirror_message(t, account_name="K", unit_name="P", tz=JKT), ui.batch_message([t], "P", JKT),
              ui.queue_message([t], JKT, "A", now=NOW), ui.search_results([t], "NIK", JKT),
              ui.unit_picker(t, UNITS), ui.correction_picker(t, UNITS),
              ui.reminder_message(t, "2 jam", None, tz=JKT), ui.nudge_message([t], "P", JKT),
              ui.escalation_message(t, account_name="K", unit_name="P", tz=JKT, now=NOW),
              ui.search_results([t], "3276010101010001", JKT)]:
        assert "3276010101010001" not in r.text and "081234567890" not in r.text, r.text


# -- ticket content ------------------------------------------------------------------------


def test_ticket_message_content() -> None:
    r = render_ticket(make_ticket())
    text = r.text
    assert text.startswith("<b>Tiket #123</b> · 🆕 Baru")
    assert "Kementerian Sosial · Komentar · @warga.jkt" in text
    assert "Label: Keluhan 92% · Pertanyaan 81%" in text
    assert "Unit: Ditjen Penanganan Fakir Miskin" in text
    assert "Batas: Kamis 27 Nov 14.05 WIB" in text
    assert '<a href="https://www.instagram.com/p/AbC123/c/17850000000000011/">' in text
    assert "LEWAT BATAS" not in text
    assert "LEWAT BATAS" in render_ticket(make_ticket(), now=datetime(2025, 11, 28, tzinfo=UTC)).text


def test_state_lines_name_who_and_when() -> None:
    acked = render_ticket(make_ticket(**ACKED), people=PEOPLE).text
    assert "Diterima oleh Budi, Senin 24 Nov 09.12 WIB" in acked
    done = render_ticket(make_ticket(**RESOLVED_BY), people=PEOPLE).text
    assert "Selesai oleh Budi, Selasa 25 Nov 10.00 WIB — catatan: sudah dijawab lewat DM" in done
    assert "Batas:" not in done
    unknown = render_ticket(make_ticket(**ACKED)).text
    assert "Diterima oleh petugas (ID 7201)" in unknown


def test_queue_is_ordered_by_deadline_and_marks_overdue() -> None:
    tickets = [make_ticket(id=1, deadline=NOW + timedelta(days=2)), make_ticket(id=2, deadline=NOW - timedelta(hours=3)),
               make_ticket(id=3, deadline=NOW + timedelta(hours=1), **ACKED)]
    r = ui.queue_message(tickets, JKT, "Antrian PFM", now=NOW, people=PEOPLE)
    assert callbacks(r) == ["t:2:open", "t:3:open", "t:1:open"]
    assert r.text.index("#2") < r.text.index("#3") < r.text.index("#1")
    assert r.text.count("LEWAT BATAS") == 1 and "1 lewat batas" in r.text
    assert "ditangani Budi" in r.text and "belum diterima" in r.text
    assert "Tidak ada tiket" in ui.queue_message([], JKT, "Antrian PFM", now=NOW).text


def test_ticket_detail_history_in_indonesian() -> None:
    kinds = ["created", "acknowledged", "moved", "resolved", "corrected", "reminder", "escalated", "revealed"]
    events = [{"id": i, "ticket_id": 123, "at": f"2025-11-24T0{i}:00:00+00:00", "actor": "7201" if i else "system",
               "kind": k, "detail": {"unit": "pusdatin", "from_unit": "pfm", "labels": ["complaint"], "note": "beres"}}
              for i, k in enumerate(kinds)]
    r = ui.ticket_detail(make_ticket(**RESOLVED_BY), events, JKT, account_name="Kemensos", unit_name="PFM",
                         people=PEOPLE, unit_names={"pusdatin": "Pusdatin"})
    check_html(r.text)
    history = r.text.split("<b>Riwayat</b>")[1]
    for word in ["dibuat", "diterima", "dialihkan", "diselesaikan", "dikoreksi", "pengingat", "eskalasi",
                 "data pribadi dibuka"]:
        assert f"— {word}" in history
    assert "• Senin 24 Nov 07.00 WIB — dibuat\n" in history
    assert "dialihkan oleh Budi dari PFM ke Pusdatin" in history
    assert "diselesaikan oleh Budi — catatan: beres" in history
    assert "dikoreksi oleh Budi: Keluhan, unit Pusdatin" in history


def test_reminder_names_the_officer() -> None:
    t = make_ticket(**ACKED)
    r = ui.reminder_message(t, "2 jam", "Budi", tz=JKT, acknowledged_by_id=7201)
    assert '<a href="tg://user?id=7201">Budi</a>' in r.text
    assert "Batas jawab 2 jam lagi: Kamis 27 Nov 14.05 WIB." in r.text
    assert "belum diterima" in ui.reminder_message(make_ticket(), "1 hari kerja", None, tz=JKT, unit_name="PFM").text


def test_escalation_says_how_late() -> None:
    r = ui.escalation_message(make_ticket(), account_name="Kemensos", unit_name="PFM", tz=JKT,
                              now=datetime(2025, 11, 27, 9, 10, tzinfo=UTC))
    assert "lewat batas waktu" in r.text and "(lewat 2 jam 5 menit)" in r.text
    assert "belum diterima" in r.text
    assert ui.escalation_message(make_ticket(), account_name="K", unit_name="P", tz=JKT, now=NOW,
                                 with_buttons=False).buttons == []


def test_nudge_lists_unacknowledged() -> None:
    r = ui.nudge_message([make_ticket(id=7), make_ticket(id=8)], "PFM", JKT, waited_text="4 jam kerja")
    assert "2 tiket untuk PFM belum diterima lebih dari 4 jam kerja" in r.text
    assert callbacks(r) == ["t:7:open", "t:8:open"]


def test_empty_results() -> None:
    assert "Tidak ada tiket yang memuat “bansos”" in ui.search_results([], "bansos", JKT).text
    assert "Belum ada" in ui.spam_list([], JKT).text


# -- help, refusals, toasts ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["officer", "media", "media_team", "supervisor"])
def test_help_lists_every_command_and_button(role: str) -> None:
    text = ui.help_text(role).text
    check_html(text)
    for usage in ["/antrian", "/tiket ID", "/cari TEKS", "/spam", "/templat [ID]", "/kelompok ID",
                  "/jawabkelompok ID TEKS", "/keluarkan ID", "/bantuan"]:
        assert usage in text
    for button in ["Terima", "Alihkan", "Jawab", "Selesai", "Koreksi", "Lihat data pribadi"]:
        assert f"{button} —" in text
    assert [name for name, _ in ui.bot_commands()] == ["antrian", "tiket", "cari", "spam", "templat", "kelompok",
                                                       "jawabkelompok", "keluarkan", "bantuan"]


def test_help_differs_per_role() -> None:
    texts = {ui.help_text(role).text for role in ("officer", "media", "supervisor")}
    assert len(texts) == 3


def test_refusals_are_polite_and_short() -> None:
    assert ui.refusal("not_unit_officer", unit_name="PFM") == "Maaf, tombol ini hanya untuk petugas unit PFM."
    assert ui.refusal("already_acknowledged", ticket_id=5, name="Budi") == "Tiket #5 sudah diterima oleh Budi."
    assert ui.refusal("something-new").startswith("Maaf")
    for reason in ui.RefusalReason.__args__:  # type: ignore[attr-defined]
        assert len(ui.refusal(reason, unit_name="U" * 300, ticket_id=1, name="N")) <= 200


def test_toasts_are_short() -> None:
    assert ui.action_toast("ack", ticket_id=5) == "Tiket #5 Anda terima. Terima kasih!"
    assert ui.action_toast("move", ticket_id=5, unit_name="Pusdatin") == "Tiket #5 dialihkan ke Pusdatin."
    for action in ["ack", "move", "done", "fix", "fixok", "reveal", "hide", "cancel", "open", "other"]:
        assert 0 < len(ui.action_toast(action, ticket_id=2**63 - 1, unit_name="U" * 300)) <= 200


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 11, 24, 2, 12, tzinfo=UTC), "Senin 24 Nov 09.12 WIB"),
        (datetime(2025, 11, 25, 3, 0, tzinfo=UTC), "Selasa 25 Nov 10.00 WIB"),
        (datetime(2025, 11, 26, 3, 0, tzinfo=UTC), "Rabu 26 Nov 10.00 WIB"),
        (datetime(2025, 11, 27, 7, 5, tzinfo=UTC), "Kamis 27 Nov 14.05 WIB"),
        (datetime(2025, 11, 28, 3, 0, tzinfo=UTC), "Jumat 28 Nov 10.00 WIB"),
        (datetime(2025, 11, 29, 3, 0, tzinfo=UTC), "Sabtu 29 Nov 10.00 WIB"),
        (datetime(2025, 11, 30, 3, 0, tzinfo=UTC), "Minggu 30 Nov 10.00 WIB"),
        (datetime(2025, 5, 1, 0, 0, tzinfo=UTC), "Kamis 1 Mei 07.00 WIB"),
        (datetime(2025, 8, 17, 0, 0, tzinfo=UTC), "Minggu 17 Agu 07.00 WIB"),
        (datetime(2025, 10, 31, 17, 30, tzinfo=UTC), "Sabtu 1 Nov 00.30 WIB"),  # the local date, not UTC's
        (datetime(2025, 12, 31, 23, 0, tzinfo=UTC), "Kamis 1 Jan 06.00 WIB"),
    ],
)
def test_format_wib(moment: datetime, expected: str) -> None:
    assert ui.format_wib(moment, JKT) == expected


def test_format_wib_other_zones_and_year() -> None:
    moment = datetime(2025, 11, 27, 7, 5, tzinfo=UTC)
    assert ui.format_wib(moment, "Asia/Makassar") == "Kamis 27 Nov 15.05 WITA"
    assert ui.format_wib(moment, "Asia/Jayapura") == "Kamis 27 Nov 16.05 WIT"
    assert ui.format_wib(moment, timezone(timedelta(hours=7))) == "Kamis 27 Nov 14.05 WIB"
    assert ui.format_wib(moment, "Europe/Amsterdam") == "Kamis 27 Nov 08.05 UTC+1"
    assert ui.format_wib(moment, JKT, year=True) == "Kamis 27 Nov 2025 14.05 WIB"
    with pytest.raises(ValueError):
        ui.format_wib(datetime(2025, 11, 27, 14, 5), JKT)


def test_format_wib_ignores_the_system_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    import locale

    monkeypatch.setattr(locale, "setlocale", lambda *a, **k: "C")  # nothing here may depend on it
    assert ui.format_wib(datetime(2025, 11, 27, 7, 5, tzinfo=UTC), JKT) == "Kamis 27 Nov 14.05 WIB"


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(hours=2, minutes=5), "2 jam 5 menit"),
        (timedelta(hours=2), "2 jam"),
        (timedelta(minutes=45, seconds=59), "45 menit"),
        (timedelta(seconds=30), "kurang dari 1 menit"),
        (timedelta(days=1, hours=3, minutes=20), "1 hari 3 jam"),
        (timedelta(days=3), "3 hari"),
        (-timedelta(hours=1, minutes=1), "1 jam 1 menit"),
    ],
)
def test_format_duration_id(span: timedelta, expected: str) -> None:
    assert ui.format_duration_id(span) == expected
