"""Working-day arithmetic: fixed cases around weekends, holidays and office
hours, then properties that must hold for any moment and any calendar."""

from __future__ import annotations

import ast
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import deadlines
from bot.deadlines import (
    WIB,
    WorkingCalendar,
    add_working_time,
    deadline,
    is_working_moment,
    next_working_moment,
    previous_working_moment,
    subtract_working_time,
    working_days_between,
    working_time_between,
)

JAKARTA = ZoneInfo("Asia/Jakarta")
HOURS = timedelta(hours=1)
DAY = WIB.day_length  # 8 hours


def wib(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JAKARTA)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# --- what the holidays package says -------------------------------------
# The cases below lean on these dates; if a package update moves them, this
# is the test that should fail first, with the package named.


def test_package_has_idul_fitri_2025_and_its_joint_leave() -> None:
    public = holidays.country_holidays("ID", years=2025, categories=("public",))
    joint = holidays.country_holidays("ID", years=2025, categories=("government",))
    assert {date(2025, 3, 31), date(2025, 4, 1)} <= set(public)
    assert {date(2025, 3, 28), date(2025, 4, 2), date(2025, 4, 3), date(2025, 4, 4),
            date(2025, 4, 7)} <= set(joint)  # fmt: skip
    assert date(2025, 4, 8) not in public and date(2025, 4, 8) not in joint


def test_package_has_year_end_2025() -> None:
    found = holidays.country_holidays("ID", years=[2025, 2026], categories=("public", "government"))
    assert {date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1)} <= set(found)
    assert not {date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31)} & set(found)


# --- working days ---------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    ["2025-03-28", "2025-03-31", "2025-04-01", "2025-04-02", "2025-04-04", "2025-04-07",
     "2025-12-25", "2025-12-26", "2026-01-01", "2025-10-11", "2025-10-12"],
)  # fmt: skip
def test_holidays_joint_leave_and_weekends_are_off(day: str) -> None:
    assert not WIB.is_working_day(date.fromisoformat(day))


@pytest.mark.parametrize("day", ["2025-03-27", "2025-04-08", "2025-12-31", "2026-01-02"])
def test_days_around_holidays_are_working(day: str) -> None:
    assert WIB.is_working_day(date.fromisoformat(day))


def test_joint_leave_counts_only_with_the_government_category() -> None:
    public_only = WorkingCalendar(categories=("public",))
    assert public_only.is_working_day(date(2025, 4, 2))
    assert not public_only.is_working_day(date(2025, 4, 1))


def test_is_working_day_rejects_datetimes() -> None:
    with pytest.raises(TypeError):
        WIB.is_working_day(wib("2025-10-13T10:00"))


# --- deadlines ------------------------------------------------------------
# October 2025 has no holidays: Mon 13 to Fri 17 is a plain week.


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2025-10-13T10:00", "2025-10-16T10:00"),  # Monday -> Thursday, same clock time
        ("2025-10-10T15:00", "2025-10-15T15:00"),  # Friday -> Wednesday over the weekend
        ("2025-10-11T10:00", "2025-10-15T16:00"),  # Saturday: Mon 08:00 + 3 days = Wed close
        ("2025-10-12T23:59", "2025-10-15T16:00"),  # Sunday night
        ("2025-10-10T16:30", "2025-10-15T16:00"),  # Friday after hours
    ],
)
def test_deadline_around_weekends(received: str, due: str) -> None:
    assert deadline(wib(received)) == wib(due)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2025-10-13T07:59", "2025-10-15T16:00"),  # before opening: counts from 08:00
        ("2025-10-13T08:00", "2025-10-15T16:00"),  # exact fit ends at close, not Thu 08:00
        ("2025-10-13T08:01", "2025-10-16T08:01"),
        ("2025-10-13T15:59", "2025-10-16T15:59"),
        ("2025-10-13T16:00", "2025-10-16T16:00"),  # closing time: no time left today
        ("2025-10-13T16:01", "2025-10-16T16:00"),  # after hours: counts from Tue 08:00
        ("2025-10-13T23:59", "2025-10-16T16:00"),
    ],
)
def test_deadline_at_office_hour_boundaries(received: str, due: str) -> None:
    assert deadline(wib(received)) == wib(due)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Thu 1h, then Nyepi joint leave, Idul Fitri and joint leave until Mon 7 Apr.
        ("2025-03-27T15:00", "2025-04-10T15:00"),
        ("2025-03-28T10:00", "2025-04-10T16:00"),  # received on joint leave
        ("2025-04-01T10:00", "2025-04-10T16:00"),  # received on Idul Fitri
        ("2025-03-26T10:00", "2025-04-09T10:00"),
    ],
)
def test_deadline_over_idul_fitri_2025(received: str, due: str) -> None:
    assert deadline(wib(received)) == wib(due)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Christmas, joint leave on the 26th, weekend; 31 Dec is a working day.
        ("2025-12-24T09:00", "2025-12-31T09:00"),
        ("2025-12-22T16:30", "2025-12-29T16:00"),
        # New Year's Day is off, Friday 2 Jan works.
        ("2025-12-30T10:00", "2026-01-05T10:00"),
        ("2025-12-31T23:00", "2026-01-06T16:00"),
    ],
)
def test_deadline_over_the_year_end(received: str, due: str) -> None:
    assert deadline(wib(received)) == wib(due)


def test_deadline_converts_utc_input_to_wib() -> None:
    due = deadline(utc("2025-10-13T03:00"))  # 10:00 WIB on Monday
    assert due == wib("2025-10-16T10:00")
    assert due.tzinfo == JAKARTA and due.utcoffset() == timedelta(hours=7)


@pytest.mark.parametrize(
    ("received_utc", "due"),
    [
        ("2025-10-12T20:00", "2025-10-15T16:00"),  # Sunday in UTC, Monday 03:00 in WIB
        ("2025-10-10T09:30", "2025-10-15T16:00"),  # Friday 16:30 WIB: after hours
        ("2025-10-13T08:59", "2025-10-16T15:59"),  # 15:59 WIB
    ],
)
def test_deadline_uses_the_wib_date_and_clock_not_utc(received_utc: str, due: str) -> None:
    assert deadline(utc(received_utc)) == wib(due)


def test_deadline_with_other_day_counts() -> None:
    assert deadline(wib("2025-10-13T10:00"), working_days=0) == wib("2025-10-13T10:00")
    assert deadline(wib("2025-10-11T10:00"), working_days=0) == wib("2025-10-13T08:00")
    assert deadline(wib("2025-10-13T10:00"), working_days=1) == wib("2025-10-14T10:00")
    assert deadline(wib("2025-10-13T10:00"), working_days=5) == wib("2025-10-20T10:00")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_deadline_rejects_bad_day_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="working_days"):
        deadline(wib("2025-10-13T10:00"), working_days=bad)  # type: ignore[arg-type]


# --- caller's calendar ----------------------------------------------------


def test_extra_holiday_pushes_the_deadline() -> None:
    cal = WorkingCalendar(extra_holidays=frozenset({date(2025, 10, 14)}))
    assert deadline(wib("2025-10-13T10:00"), calendar=cal) == wib("2025-10-17T10:00")


def test_extra_working_saturday_pulls_the_deadline() -> None:
    cal = WorkingCalendar(extra_workdays=frozenset({date(2025, 10, 11)}))
    assert is_working_moment(wib("2025-10-11T10:00"), calendar=cal)
    assert deadline(wib("2025-10-10T15:00"), calendar=cal) == wib("2025-10-14T15:00")


def test_extra_working_day_wins_over_joint_leave() -> None:
    cal = WorkingCalendar(extra_workdays=[date(2025, 12, 26)])  # type: ignore[arg-type]
    assert cal.extra_workdays == frozenset({date(2025, 12, 26)})
    assert deadline(wib("2025-12-24T09:00"), calendar=cal) == wib("2025-12-30T09:00")


def test_custom_office_hours() -> None:
    cal = WorkingCalendar(opens=time(7, 30), closes=time(16, 0))
    assert cal.day_length == timedelta(hours=8, minutes=30)
    assert deadline(wib("2025-10-13T10:00"), calendar=cal) == wib("2025-10-16T10:00")
    assert deadline(wib("2025-10-11T10:00"), calendar=cal) == wib("2025-10-15T16:00")
    assert deadline(wib("2025-10-13T07:45"), calendar=cal) == wib("2025-10-16T07:45")


def test_other_zone_calendar_answers_in_its_zone() -> None:
    wita = WorkingCalendar(tz="Asia/Makassar")
    due = deadline(utc("2025-10-13T02:00"), calendar=wita)  # 10:00 WITA
    assert due.tzinfo == ZoneInfo("Asia/Makassar")
    assert due == datetime(2025, 10, 16, 10, 0, tzinfo=ZoneInfo("Asia/Makassar"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz": "Asia/Atlantis"}, "time zone"),
        ({"opens": time(16), "closes": time(8)}, "before"),
        ({"opens": time(8), "closes": time(8)}, "before"),
        ({"opens": time(8, tzinfo=timezone.utc)}, "tzinfo"),
        ({"categories": ("public", "bank")}, "categories"),
        ({"categories": ()}, "categories"),
        ({"extra_holidays": frozenset({datetime(2025, 1, 2)})}, "dates"),
        (
            {"extra_holidays": frozenset({date(2025, 1, 2)}),
             "extra_workdays": frozenset({date(2025, 1, 2)})},
            "2025-01-02",
        ),  # fmt: skip
    ],
)
def test_calendar_rejects_bad_configuration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(**kwargs)  # type: ignore[arg-type]


def test_calendar_with_no_working_days_fails_loudly() -> None:
    year = frozenset(date(2030, 1, 1) + timedelta(n) for n in range(800))
    cal = WorkingCalendar(extra_holidays=year)
    with pytest.raises(ValueError, match="no working day"):
        deadline(wib("2030-06-03T10:00"), calendar=cal)


def test_calendars_are_hashable_and_compare_by_value() -> None:
    assert WorkingCalendar() == WIB and hash(WorkingCalendar()) == hash(WIB)
    assert WorkingCalendar(closes=time(17)) != WIB


# --- moments, working time ------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-10-13T07:59:59", False),
        ("2025-10-13T08:00", True),
        ("2025-10-13T15:59", True),
        ("2025-10-13T16:00", True),  # closing time is included
        ("2025-10-13T16:00:00.000001", False),
        ("2025-10-13T23:59", False),
        ("2025-10-11T10:00", False),  # Saturday
        ("2025-04-02T10:00", False),  # joint leave
    ],
)
def test_is_working_moment(moment: str, working: bool) -> None:
    assert is_working_moment(wib(moment)) is working


@pytest.mark.parametrize(
    ("moment", "following", "preceding"),
    [
        ("2025-10-13T07:59", "2025-10-13T08:00", "2025-10-10T16:00"),
        ("2025-10-13T10:00", "2025-10-13T10:00", "2025-10-13T10:00"),
        ("2025-10-13T16:00", "2025-10-13T16:00", "2025-10-13T16:00"),
        ("2025-10-13T16:01", "2025-10-14T08:00", "2025-10-13T16:00"),
        ("2025-10-10T17:00", "2025-10-13T08:00", "2025-10-10T16:00"),
        ("2025-03-27T17:00", "2025-04-08T08:00", "2025-03-27T16:00"),
        ("2025-04-03T12:00", "2025-04-08T08:00", "2025-03-27T16:00"),
    ],
)
def test_next_and_previous_working_moment(moment: str, following: str, preceding: str) -> None:
    assert next_working_moment(wib(moment)) == wib(following)
    assert previous_working_moment(wib(moment)) == wib(preceding)


@pytest.mark.parametrize(
    ("start", "end", "elapsed"),
    [
        ("2025-10-10T15:00", "2025-10-13T09:00", 2 * HOURS),  # over a weekend
        ("2025-10-13T06:00", "2025-10-13T20:00", DAY),
        ("2025-10-13T10:00", "2025-10-13T10:00", timedelta(0)),
        ("2025-10-13T12:00", "2025-10-13T10:00", -2 * HOURS),
        ("2025-03-27T08:00", "2025-04-08T08:00", DAY),  # Idul Fitri 2025
        ("2025-12-24T12:00", "2026-01-02T12:00", 4 * HOURS + 3 * DAY + 4 * HOURS),
    ],
)
def test_working_time_between(start: str, end: str, elapsed: timedelta) -> None:
    assert working_time_between(wib(start), wib(end)) == elapsed


def test_working_time_between_mixed_zones() -> None:
    # 09:00 WIB to 11:00 WIB, one given in UTC.
    assert working_time_between(wib("2025-10-13T09:00"), utc("2025-10-13T04:00")) == 2 * HOURS


@pytest.mark.parametrize(
    ("start", "delta", "result"),
    [
        ("2025-10-16T10:00", -2 * HOURS, "2025-10-16T08:00"),  # exact fit: opening, not Wed 16:00
        ("2025-10-16T09:00", -2 * HOURS, "2025-10-15T15:00"),
        ("2025-10-11T10:00", -HOURS, "2025-10-10T15:00"),
        ("2025-10-13T15:00", HOURS, "2025-10-13T16:00"),  # exact fit: closing time
        ("2025-10-13T15:00", 2 * HOURS, "2025-10-14T09:00"),
        ("2025-04-08T09:00", -2 * HOURS, "2025-03-27T15:00"),
    ],
)
def test_add_working_time(start: str, delta: timedelta, result: str) -> None:
    assert add_working_time(wib(start), delta) == wib(result)
    assert subtract_working_time(wib(start), -delta) == wib(result)


def test_zero_working_time_moves_to_the_nearest_working_moment() -> None:
    # add goes forward and subtract backward, even for nothing.
    assert add_working_time(wib("2025-10-11T10:00"), timedelta(0)) == wib("2025-10-13T08:00")
    assert subtract_working_time(wib("2025-10-11T10:00"), timedelta(0)) == wib("2025-10-10T16:00")


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        ("2025-10-13", "2025-10-20", 5),
        ("2025-10-13", "2025-10-13", 0),
        ("2025-10-20", "2025-10-13", -5),
        ("2025-03-24", "2025-04-14", 8),  # Idul Fitri: Mon-Thu, then Tue 8 - Fri 11 Apr
        ("2025-12-22", "2026-01-05", 7),  # 22-24 Dec, 29-31 Dec, 2 Jan
    ],
)
def test_working_days_between(start: str, end: str, count: int) -> None:
    assert working_days_between(date.fromisoformat(start), date.fromisoformat(end)) == count


def test_working_days_between_rejects_datetimes() -> None:
    with pytest.raises(TypeError, match="dates"):
        working_days_between(wib("2025-10-13T10:00"), date(2025, 10, 20))


NAIVE = datetime(2025, 10, 13, 10, 0)
AWARE = wib("2025-10-13T10:00")


@pytest.mark.parametrize(
    "call",
    [
        lambda: deadline(NAIVE),
        lambda: is_working_moment(NAIVE),
        lambda: next_working_moment(NAIVE),
        lambda: previous_working_moment(NAIVE),
        lambda: add_working_time(NAIVE, HOURS),
        lambda: subtract_working_time(NAIVE, HOURS),
        lambda: working_time_between(NAIVE, AWARE),
        lambda: working_time_between(AWARE, NAIVE),
    ],
)
def test_naive_datetimes_are_rejected(call: object) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()  # type: ignore[operator]


# --- the module's shape and speed ----------------------------------------


def test_module_imports_nothing_from_telegram_http_or_sqlite() -> None:
    tree = ast.parse(Path(deadlines.__file__).read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}  # fmt: skip
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in names}
    assert roots <= {"__future__", "collections", "dataclasses", "datetime", "functools",
                     "holidays", "zoneinfo"}  # fmt: skip


# --- properties -----------------------------------------------------------

ZONES = [timezone.utc, JAKARTA, ZoneInfo("Asia/Jayapura"), ZoneInfo("Europe/Amsterdam"),
         timezone(timedelta(hours=-9, minutes=-30))]  # fmt: skip
moments = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.sampled_from(ZONES)
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))
day_counts = st.integers(min_value=0, max_value=10)


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    """Any sane calendar: other hours, extra days off and extra working days."""
    opens = draw(st.times(max_value=time(20)))
    closes_minutes = draw(st.integers(min_value=1, max_value=(24 * 60 - 1) - opens.hour * 60 - opens.minute))
    closes = (datetime.combine(date.min, opens) + timedelta(minutes=closes_minutes)).time()
    days = st.dates(min_value=date(2023, 1, 1), max_value=date(2027, 12, 31))
    off = draw(st.frozensets(days, max_size=40))
    on = draw(st.frozensets(days, max_size=40)) - off
    categories = draw(st.sampled_from([("public", "government"), ("public",), ("government",)]))
    tz = draw(st.sampled_from(["Asia/Jakarta", "Asia/Makassar", "UTC"]))
    return WorkingCalendar(tz, opens, closes, off, on, categories)


any_calendar = st.one_of(st.just(WIB), calendars())


@given(moments, day_counts, any_calendar)
@settings(deadline=None)
def test_deadline_is_a_working_moment_in_the_calendar_zone(
    received: datetime, days: int, cal: WorkingCalendar
) -> None:
    due = deadline(received, days, calendar=cal)
    assert is_working_moment(due, calendar=cal)
    assert due.tzinfo == cal.zone


@given(moments, day_counts, any_calendar)
@settings(deadline=None)
def test_deadline_is_exactly_n_days_of_working_time_away(
    received: datetime, days: int, cal: WorkingCalendar
) -> None:
    due = deadline(received, days, calendar=cal)
    start = next_working_moment(received, calendar=cal)
    assert due >= start >= received
    assert working_time_between(received, due, calendar=cal) == days * cal.day_length
    assert working_time_between(start, due, calendar=cal) == days * cal.day_length


@given(moments, st.integers(min_value=1, max_value=10), any_calendar)
@settings(deadline=None)
def test_deadline_is_the_earliest_such_moment(
    received: datetime, days: int, cal: WorkingCalendar
) -> None:
    due = deadline(received, days, calendar=cal)
    just_before = due - timedelta(microseconds=1)
    assert working_time_between(received, just_before, calendar=cal) < days * cal.day_length


@given(moments, moments, day_counts)
def test_a_later_message_is_never_due_earlier(a: datetime, b: datetime, days: int) -> None:
    first, second = sorted([a, b])
    assert deadline(first, days) <= deadline(second, days)


@given(moments, spans, any_calendar)
@settings(deadline=None)
def test_add_then_measure_gives_back_the_delta(
    start: datetime, delta: timedelta, cal: WorkingCalendar
) -> None:
    later = add_working_time(start, delta, calendar=cal)
    earlier = subtract_working_time(start, delta, calendar=cal)
    assert is_working_moment(later, calendar=cal) and is_working_moment(earlier, calendar=cal)
    assert working_time_between(start, later, calendar=cal) == delta
    assert working_time_between(earlier, start, calendar=cal) == delta
    assert add_working_time(start, -delta, calendar=cal) == earlier or delta == timedelta(0)


@given(moments, spans.filter(bool), any_calendar)
@settings(deadline=None)
def test_subtract_gives_the_latest_such_moment(
    start: datetime, delta: timedelta, cal: WorkingCalendar
) -> None:
    earlier = subtract_working_time(start, delta, calendar=cal)
    just_after = earlier + timedelta(microseconds=1)
    assert working_time_between(just_after, start, calendar=cal) < delta


@given(moments, moments, moments)
def test_working_time_adds_up_and_flips_sign(a: datetime, b: datetime, c: datetime) -> None:
    assert working_time_between(a, b) + working_time_between(b, c) == working_time_between(a, c)
    assert working_time_between(a, b) == -working_time_between(b, a)
    assert working_time_between(min(a, b), max(a, b)) >= timedelta(0)


@given(moments, any_calendar)
@settings(deadline=None)
def test_next_working_moment_skips_no_working_time(moment: datetime, cal: WorkingCalendar) -> None:
    following = next_working_moment(moment, calendar=cal)
    preceding = previous_working_moment(moment, calendar=cal)
    assert preceding <= moment <= following
    assert working_time_between(preceding, following, calendar=cal) == timedelta(0)
    assert next_working_moment(following, calendar=cal) == following
    assert is_working_moment(moment, calendar=cal) == (following == moment)


@given(st.dates(min_value=date(2023, 1, 1), max_value=date(2027, 12, 31)), st.integers(0, 60))
def test_working_days_between_counts_working_days(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    days = (start + timedelta(n) for n in range(length))
    assert working_days_between(start, end) == sum(WIB.is_working_day(d) for d in days)
    # A full working day of working time lies in each counted day.
    begin = datetime.combine(start, time(0), JAKARTA)
    finish = datetime.combine(end, time(0), JAKARTA)
    assert working_time_between(begin, finish) == working_days_between(start, end) * DAY
