"""Working-day arithmetic for answer deadlines, with Indonesian holidays.

The ministry promises an answer within 3 working days. Working time is the
office hours (default 08:00-16:00) of every working day in Asia/Jakarta. A
working day is Monday to Friday, minus national holidays and joint leave
(cuti bersama) from the `holidays` package, minus the caller's extra days off,
plus the caller's extra working days (a Saturday declared working).

Conventions, chosen so that results are never outside office hours:

- Office hours are the closed interval [opens, closes]: 16:00 itself is still
  a working moment, 16:00:00.000001 is not. No working time passes in an
  instant, so whether the boundary is "in" changes no working-time sum; it
  only decides how boundary results are written.
- Moving forward returns the *earliest* moment at which the working time has
  passed: a deadline that would fall at opening time is written as the
  previous working day's closing time (Wednesday 16:00, not Thursday 08:00).
- Moving backward returns the *latest* such moment: "2 working hours before
  Thursday 10:00" is Thursday 08:00, not Wednesday 16:00.
- A moment outside office hours starts counting at the next opening time.

So a message received on Saturday, at 07:59 on Monday, or at 08:00 on Monday
is due on Wednesday at 16:00; one received on Monday at 10:00 is due on
Thursday at 10:00; one received on Monday at 16:00 (or later that evening) is
due on Thursday at 16:00.

Working time is measured on the local wall clock, so every working day counts
exactly `closes - opens`; this is exact for zones without daylight saving,
which includes all three Indonesian zones.

Every datetime argument must be timezone-aware; results are aware datetimes
in the calendar's zone. The module imports nothing from Telegram, HTTP or
SQLite.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from holidays.constants import GOVERNMENT, PUBLIC
from holidays.countries.indonesia import Indonesia

COUNTRY = "ID"
# The `holidays` package files cuti bersama under GOVERNMENT; without it the
# Idul Fitri joint leave days would count as working days.
DEFAULT_CATEGORIES: tuple[str, ...] = (PUBLIC, GOVERNMENT)
DEFAULT_WORKING_DAYS = 3
# A calendar with no working day in this many days is a configuration error,
# not something to loop over forever.
_MAX_GAP_DAYS = 366


@dataclass(frozen=True)
class WorkingCalendar:
    """Where and when the office works. Hashable; build it once at start-up.

    `extra_workdays` win over weekends and national holidays (a unit that
    works on a Saturday or on a cuti bersama day); a date may not be both an
    extra holiday and an extra working day.
    """

    tz: str = "Asia/Jakarta"
    opens: time = time(8, 0)
    closes: time = time(16, 0)
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    # Working dates per year: built on first use, shared by every call, so a
    # deadline costs a few set look-ups instead of a holidays object.
    _working_dates: dict[int, frozenset[date]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        # Callers may pass lists or sets; store frozensets so the calendar
        # stays hashable and immutable.
        object.__setattr__(self, "extra_holidays", _dates(self.extra_holidays, "extra_holidays"))
        object.__setattr__(self, "extra_workdays", _dates(self.extra_workdays, "extra_workdays"))
        object.__setattr__(self, "categories", tuple(self.categories))
        _check_calendar(self)

    @functools.cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def day_length(self) -> timedelta:
        """Working time in one working day (8 hours by default)."""
        return _at(date.min, self.closes) - _at(date.min, self.opens)

    def is_working_day(self, day: date) -> bool:
        """True if `day` (a local calendar date) is a working day."""
        if isinstance(day, datetime):
            raise TypeError("is_working_day takes a date; for a moment use is_working_moment")
        year = self._working_dates.get(day.year)
        if year is None:
            year = self._working_dates.setdefault(day.year, self._build_year(day.year))
        return day in year

    def _build_year(self, year: int) -> frozenset[date]:
        off = _national_holidays(self.categories, year) | self.extra_holidays
        first = date(year, 1, 1)
        days = (first + timedelta(n) for n in range((date(year + 1, 1, 1) - first).days))
        return frozenset(
            d for d in days if d in self.extra_workdays or (d.weekday() < 5 and d not in off)
        )


def _dates(values: Iterable[date], name: str) -> frozenset[date]:
    result = frozenset(values)
    for value in result:
        # A datetime is a date subclass, but its date part depends on a zone
        # the calendar cannot know.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValueError(f"{name} must contain dates, got {value!r}")
    return result


def _check_calendar(cal: WorkingCalendar) -> None:
    try:
        ZoneInfo(cal.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {cal.tz!r}") from exc
    if cal.opens.tzinfo is not None or cal.closes.tzinfo is not None:
        raise ValueError("opens and closes are local wall-clock times; give them no tzinfo")
    if not cal.opens < cal.closes:
        raise ValueError(f"opens ({cal.opens}) must be before closes ({cal.closes})")
    both = cal.extra_holidays & cal.extra_workdays
    if both:
        listed = ", ".join(sorted(d.isoformat() for d in both))
        raise ValueError(f"dates both extra holidays and extra working days: {listed}")
    if not cal.categories:
        # The package reads no categories as "public only": say so instead.
        raise ValueError("categories must name at least one holiday category, e.g. ('public',)")
    unknown = set(cal.categories) - set(Indonesia.supported_categories)
    if unknown:
        raise ValueError(
            f"unknown holiday categories {sorted(unknown)}; "
            f"supported: {sorted(Indonesia.supported_categories)}"
        )


@functools.lru_cache(maxsize=256)
def _national_holidays(categories: tuple[str, ...], year: int) -> frozenset[date]:
    # Cached across calendars: building a holidays object costs far more than
    # the arithmetic it feeds. Years outside the package's range come back
    # empty, i.e. only weekends are off.
    found = holidays.country_holidays(COUNTRY, years=year, categories=categories)
    return frozenset(found.keys())


WIB = WorkingCalendar()


# --- conversions ---------------------------------------------------------


def _local(moment: datetime, cal: WorkingCalendar) -> datetime:
    """The naive local wall-clock time of an aware moment."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"naive datetime {moment.isoformat()}: pass a timezone-aware datetime "
            "(e.g. from datetime.now(timezone.utc)), so the time zone is never guessed"
        )
    return moment.astimezone(cal.zone).replace(tzinfo=None)


def _aware(local: datetime, cal: WorkingCalendar) -> datetime:
    return local.replace(tzinfo=cal.zone)


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock)


def _next_working_day(day: date, cal: WorkingCalendar, step: int = 1) -> date:
    """The nearest working day strictly after `day` (before it if step is -1)."""
    for n in range(1, _MAX_GAP_DAYS + 1):
        candidate = day + timedelta(days=n * step)
        if cal.is_working_day(candidate):
            return candidate
    raise ValueError(f"no working day within {_MAX_GAP_DAYS} days of {day}: check the calendar")


def _in_hours(local: datetime, cal: WorkingCalendar) -> bool:
    return cal.is_working_day(local.date()) and cal.opens <= local.time() <= cal.closes


def _forward_start(local: datetime, cal: WorkingCalendar) -> datetime:
    """`local` if it is a working moment, else the next opening time."""
    if _in_hours(local, cal):
        return local
    day = local.date()
    if cal.is_working_day(day) and local.time() < cal.opens:
        return _at(day, cal.opens)
    return _at(_next_working_day(day, cal), cal.opens)


def _backward_start(local: datetime, cal: WorkingCalendar) -> datetime:
    """`local` if it is a working moment, else the previous closing time."""
    if _in_hours(local, cal):
        return local
    day = local.date()
    if cal.is_working_day(day) and local.time() > cal.closes:
        return _at(day, cal.closes)
    return _at(_next_working_day(day, cal, step=-1), cal.closes)


# --- public API ----------------------------------------------------------


def is_working_moment(moment: datetime, *, calendar: WorkingCalendar = WIB) -> bool:
    """True during office hours of a working day, both ends included."""
    return _in_hours(_local(moment, calendar), calendar)


def next_working_moment(moment: datetime, *, calendar: WorkingCalendar = WIB) -> datetime:
    """`moment` itself if it is a working moment, else the next opening time."""
    return _aware(_forward_start(_local(moment, calendar), calendar), calendar)


def previous_working_moment(moment: datetime, *, calendar: WorkingCalendar = WIB) -> datetime:
    """`moment` itself if it is a working moment, else the previous closing time."""
    return _aware(_backward_start(_local(moment, calendar), calendar), calendar)


def add_working_time(
    start: datetime, delta: timedelta, *, calendar: WorkingCalendar = WIB
) -> datetime:
    """The earliest moment `delta` of working time after `start`.

    A negative delta moves backward (see subtract_working_time). A zero delta
    gives next_working_moment(start). The result is always a working moment.
    """
    if delta < timedelta(0):
        return subtract_working_time(start, -delta, calendar=calendar)
    now = _forward_start(_local(start, calendar), calendar)
    left = delta
    while True:
        today = _at(now.date(), calendar.closes) - now
        # `<=` makes an exact fit end at closing time rather than at the
        # next opening: the earliest moment, and the one people read best.
        if left <= today:
            return _aware(now + left, calendar)
        left -= today
        now = _at(_next_working_day(now.date(), calendar), calendar.opens)


def subtract_working_time(
    start: datetime, delta: timedelta, *, calendar: WorkingCalendar = WIB
) -> datetime:
    """The latest moment `delta` of working time before `start`.

    Used for "2 working hours before the deadline". A negative delta moves
    forward. The result is always a working moment; an exact fit ends at
    opening time rather than at the previous closing time, so a reminder
    goes out when people are arriving, not leaving.
    """
    if delta < timedelta(0):
        return add_working_time(start, -delta, calendar=calendar)
    now = _backward_start(_local(start, calendar), calendar)
    left = delta
    while True:
        today = now - _at(now.date(), calendar.opens)
        if left <= today:
            return _aware(now - left, calendar)
        left -= today
        now = _at(_next_working_day(now.date(), calendar, step=-1), calendar.closes)


def working_time_between(
    start: datetime, end: datetime, *, calendar: WorkingCalendar = WIB
) -> timedelta:
    """Working time from `start` to `end`; negative if `end` is earlier."""
    first, last = _local(start, calendar), _local(end, calendar)
    if last < first:
        return -working_time_between(end, start, calendar=calendar)
    total = timedelta(0)
    day = first.date()
    while day <= last.date():
        if calendar.is_working_day(day):
            lo = max(first, _at(day, calendar.opens))
            hi = min(last, _at(day, calendar.closes))
            total += max(hi - lo, timedelta(0))
        day += timedelta(days=1)
    return total


def working_days_between(start: date, end: date, *, calendar: WorkingCalendar = WIB) -> int:
    """How many working days lie in [start, end); negative if `end` is earlier.

    Takes local calendar dates (like numpy.busday_count). For the working
    time between two moments, in days, use
    working_time_between(a, b) / calendar.day_length.
    """
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise TypeError("working_days_between takes dates; for moments use working_time_between")
    if end < start:
        return -working_days_between(end, start, calendar=calendar)
    count = 0
    while start < end:
        count += calendar.is_working_day(start)
        start += timedelta(days=1)
    return count


def deadline(
    received_at: datetime,
    working_days: int = DEFAULT_WORKING_DAYS,
    *,
    calendar: WorkingCalendar = WIB,
) -> datetime:
    """When an answer to a message received at `received_at` is due.

    Counting starts at next_working_moment(received_at); the deadline is the
    earliest moment `working_days` full days of working time later. It is
    always a working moment, in the calendar's zone, and never earlier for a
    later message.
    """
    if isinstance(working_days, bool) or not isinstance(working_days, int) or working_days < 0:
        raise ValueError(f"working_days must be a non-negative integer, got {working_days!r}")
    return add_working_time(received_at, working_days * calendar.day_length, calendar=calendar)


class WorkingClock:
    """Working hours between many pairs of moments, as bot.deadlines.working_time_between
    counts them (a property test holds the two equal), in constant time per pair.

    Each local day's working seconds are added up once into a running total, so
    that a moment's position on the working clock is one look-up; the working time
    between two moments is the difference of their positions. A month of 100,000
    tickets costs a fraction of a second instead of seconds.
    """

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._length = calendar.day_length.total_seconds()
        self._opens = calendar.opens.hour * 3600 + calendar.opens.minute * 60 + calendar.opens.second
        # day number (days since 1970-01-01, local) -> (working seconds before that day, is a working day)
        self._days: dict[int, tuple[float, bool]] = {}
        self._low = self._high = 0

    def hours(self, start: str | datetime | float, end: str | datetime) -> float:
        """Working hours from start to end (stored ISO text, aware datetimes, or a position
        from `position`); negative if end is earlier."""
        begin = start if isinstance(start, float) else self.position(start)
        return (self.position(end) - begin) / 3600

    def position(self, moment: str | datetime) -> float:
        """Working seconds from an arbitrary origin to `moment`."""
        when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        offset = when.astimezone(self.calendar.zone).utcoffset()
        if offset is None or when.tzinfo is None:
            raise ValueError(f"naive datetime {when.isoformat()}: pass a timezone-aware moment")
        day, seconds = divmod(when.timestamp() + offset.total_seconds(), 86400)
        before, working = self._day(int(day))
        return before + (min(max(seconds - self._opens, 0.0), self._length) if working else 0.0)

    def _day(self, day: int) -> tuple[float, bool]:
        known = self._days.get(day)
        if known is not None:
            return known
        if not self._days:
            self._days[day] = (0.0, self._is_working(day))
            self._low = self._high = day
        while day > self._high:
            before, working = self._days[self._high]
            self._high += 1
            self._days[self._high] = (before + (self._length if working else 0.0), self._is_working(self._high))
        while day < self._low:
            self._low -= 1
            working = self._is_working(self._low)
            self._days[self._low] = (self._days[self._low + 1][0] - (self._length if working else 0.0), working)
        return self._days[day]

    def _is_working(self, day: int) -> bool:
        return self.calendar.is_working_day(date.fromordinal(day + _EPOCH_ORDINAL))


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def working_hours(start: datetime, end: datetime, calendar: WorkingCalendar) -> float:
    """Working hours between two aware moments (bot.deadlines.working_time_between)."""
    return working_time_between(start, end, calendar=calendar).total_seconds() / 3600
