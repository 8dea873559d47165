"""routing.yaml and the environment, checked once at start-up into frozen typed objects.

A bad file raises one ConfigError that lists every problem with its YAML path,
its line and how to fix it, so the media team can mend it without reading code.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
import datetime as dt
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Mapping

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from classifiers.base import AccountRules, UnitRules

if TYPE_CHECKING:
    from bot.deadlines import WorkingCalendar

DEFAULT_GRAPH_URL = "https://graph.instagram.com/v23.0"
DEFAULT_TELEGRAM_URL = "https://api.telegram.org"
_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class ConfigError(Exception):
    """routing.yaml or the environment is wrong; the message is meant for a person."""


class StartupError(Exception):
    """The bot could not start (token refused, Telegram unreachable): one line in plain
    words for the operator, never holding a secret."""


_CLOCK = re.compile(r"^\s*(\d{1,2})[.:](\d{2})(?::(\d{2}))?\s*$")
ID_HELP_USER = "ask the person to send /id to the bot in a private chat"
ID_HELP_GROUP = "send /id in the group: the bot answers with the group's id"


def _clock_time(value: Any) -> Any:
    """A wall-clock time as people write it: "08:00", "8:00", "08.00" or "8.00".

    The routing file is read with a loader that keeps such values as text (YAML 1.1
    would read 08.00 as the number 8.0, 7.30 as 7.3 and 8:00 as the number 480), so
    anything that is not text here was written some other way and is refused rather
    than guessed at."""
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if match:
            hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
            if hour <= 23 and minute <= 59 and second <= 59:
                return dt.time(hour, minute, second)
    raise ValueError(f"'{value}' is not a time of day: write hours and minutes, e.g. \"08:00\" or \"07.30\"")


def _group_id(value: int) -> int:
    if value >= 0:
        raise ValueError(f"{value} is not a group's chat id: group ids are negative (supergroups start with -100, "
                         f"e.g. -1001234567890); a positive number is a person's user id — {ID_HELP_GROUP}")
    return value


def _user_ids(value: tuple[int, ...]) -> tuple[int, ...]:
    for item in value:
        if item <= 0:
            raise ValueError(f"{item} is not a person's user id: user ids are positive (a negative number is a "
                             f"group's chat id) — {ID_HELP_USER}")
    return value


ClockTime = Annotated[dt.time, BeforeValidator(_clock_time)]
GroupId = Annotated[int, AfterValidator(_group_id)]
UserIds = Annotated[tuple[int, ...], AfterValidator(_user_ids)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingHours(_Model):
    start: ClockTime = dt.time(8, 0)
    end: ClockTime = dt.time(16, 0)

    @model_validator(mode="after")
    def _ordered(self) -> "WorkingHours":
        if self.end <= self.start:
            raise ValueError("end must be later than start, e.g. {start: \"08:00\", end: \"16:00\"}")
        return self


class DeadlineConfig(_Model):
    working_days: int = Field(3, ge=1, le=30)
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()


def parse_duration_hours(text: str, hours_per_day: float) -> float:
    """'1d' or '2h' in working time, as working hours."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a duration: write a number and d (working days) or h (working hours), e.g. \"2h\"")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * hours_per_day if unit == "d" else float(amount)


class RemindersConfig(_Model):
    before_deadline: tuple[str, ...] = ("1d", "2h")
    nudge_unacknowledged_after: str = "4h"

    @field_validator("before_deadline", "nudge_unacknowledged_after")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        for item in value if isinstance(value, tuple) else (value,):
            parse_duration_hours(item, 8)
        return value


class DigestConfig(_Model):
    time: ClockTime = dt.time(7, 30)


class PollingConfig(_Model):
    interval_minutes: int = Field(5, ge=1, le=1440)
    # With webhooks live, polling is only the safety net for events Meta failed to deliver.
    interval_minutes_with_webhooks: int = Field(30, ge=1, le=1440)
    backfill_days: int = Field(7, ge=0, le=60)
    media_limit: int = Field(50, ge=1, le=100)


class SurgeConfig(_Model):
    """When a post surges (bot/surges.py): at least `min_tickets` comments needing an answer in
    the last `window_minutes`, and at least `factor` times the account's usual number per
    window over the past week. It closes after `quiet_minutes` without a new ticket."""

    window_minutes: int = Field(10, ge=1, le=1440)
    min_tickets: int = Field(30, ge=2, le=100000)
    factor: float = Field(5.0, ge=1.0, le=1000.0)
    quiet_minutes: int = Field(60, ge=1, le=10080)
    # The card is edited in place; at most once per this many seconds per group (Telegram counts
    # edits against the group's 20 messages a minute).
    card_edit_seconds: int = Field(30, ge=3, le=3600)
    # Group answers are posted as replies under each comment, at most this many per minute per
    # account: well under Meta's call budget, and slow enough not to look like a spam bot.
    replies_per_minute: int = Field(30, ge=1, le=600)


class ChatConfig(_Model):
    chat_id: GroupId
    members: UserIds = ()


class UnitConfig(_Model):
    name: str = Field(min_length=1)
    chat_id: GroupId
    officers: UserIds = ()
    keywords: tuple[str, ...] = ()
    # When keywords of several units match one message, the highest priority wins.
    priority: int = Field(0, ge=0, le=100)
    templates: dict[str, str] = {}  # name -> standard ("normatif") answer text, offered by /templat

    @field_validator("keywords")
    @classmethod
    def _clean_keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(k.strip().lower() for k in value)
        if any(not k for k in cleaned):
            raise ValueError("a keyword is empty: remove the empty item from the list")
        return cleaned


class AccountConfig(_Model):
    name: str = Field(min_length=1)
    instagram_user_id: str = Field(pattern=r"^\d+$")
    token_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    default_unit: str = "humas"
    hide_spam: bool = False
    units: dict[str, UnitConfig]

    @field_validator("instagram_user_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _default_unit_exists(self) -> "AccountConfig":
        for key in self.units:
            if not _KEY.match(key):
                raise ValueError(f"unit key '{key}' must be lower-case letters, digits or _, e.g. 'humas'")
        if self.default_unit not in self.units:
            raise ValueError(
                f"default_unit '{self.default_unit}' is not one of this account's units "
                f"({', '.join(self.units)}): add it under units or change default_unit"
            )
        return self


@functools.lru_cache(maxsize=8)
def _calendar(tz: str, opens: dt.time, closes: dt.time, extra_holidays: frozenset[date],
              extra_workdays: frozenset[date]) -> "WorkingCalendar":
    """One calendar per configuration, so its per-year caches of working days are built once."""
    from bot.deadlines import WorkingCalendar

    return WorkingCalendar(tz=tz, opens=opens, closes=closes, extra_holidays=extra_holidays,
                           extra_workdays=extra_workdays)


class RoutingConfig(_Model):
    timezone: str = "Asia/Jakarta"
    deadline: DeadlineConfig = Field(default_factory=lambda: DeadlineConfig.model_validate({}))
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    polling: PollingConfig = Field(default_factory=lambda: PollingConfig.model_validate({}))
    surges: SurgeConfig = Field(default_factory=lambda: SurgeConfig.model_validate({}))
    media_team: ChatConfig
    supervisor: ChatConfig
    accounts: dict[str, AccountConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}': use an IANA name such as Asia/Jakarta") from None
        return value

    @model_validator(mode="after")
    def _keys_valid(self) -> "RoutingConfig":
        for key in self.accounts:
            if not _KEY.match(key):
                raise ValueError(f"account key '{key}' must be lower-case letters, digits or _, e.g. 'kemensos'")
        return self

    def unit(self, account: str, unit: str) -> UnitConfig:
        return self.accounts[account].units[unit]

    def calendar(self) -> "WorkingCalendar":
        """The working calendar that deadlines, reminders and compliance are counted in."""
        return _calendar(self.timezone, self.deadline.working_hours.start, self.deadline.working_hours.end,
                         frozenset(self.deadline.extra_holidays), frozenset(self.deadline.extra_workdays))

    def account_rules(self) -> dict[str, AccountRules]:
        """The part of the routing the classifier's router needs."""
        return {
            key: AccountRules(
                account=key,
                default_unit=acc.default_unit,
                units=tuple(UnitRules(unit=u, keywords=cfg.keywords, priority=cfg.priority)
                            for u, cfg in acc.units.items()),
            )
            for key, acc in self.accounts.items()
        }


@dataclass(frozen=True)
class Settings:
    """Everything the running bot needs: the routing file plus the environment."""

    routing: RoutingConfig
    config_path: Path
    db_path: Path
    telegram_token: str | None
    telegram_api_url: str
    instagram_graph_url: str
    instagram_tokens: Mapping[str, str | None]  # account key -> token (None: not set)
    webhook_verify_token: str | None = None
    app_secret: str | None = None

    def __repr__(self) -> str:  # never print secrets, not even in a traceback
        return f"Settings(config={self.config_path}, db={self.db_path}, accounts={list(self.routing.accounts)})"

    def instagram_token(self, account: str) -> str:
        token = self.instagram_tokens.get(account)
        if not token:
            env = self.routing.accounts[account].token_env
            raise ConfigError(f"account '{account}': set the environment variable {env} to its Instagram access token")
        return token


def load_routing(path: Path) -> RoutingConfig:
    """Read and check routing.yaml; raise ConfigError naming every bad key and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; copy routing.yaml from the project and edit it") from None
    return parse_routing(text, str(path))


class _RoutingLoader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, except that a plain value that looks like a time of day
    (08.00, 7.30, 8:00, 16:00) stays text instead of becoming a float or a sexagesimal int."""


_RoutingLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _digit in "0123456789":
    _RoutingLoader.yaml_implicit_resolvers.setdefault(_digit, []).insert(
        0, ("tag:yaml.org,2002:str", re.compile(r"^[0-9]{1,2}[.:][0-9]{2}(?::[0-9]{2})?$")))


def parse_routing(text: str, source: str = "routing.yaml") -> RoutingConfig:
    try:
        node = yaml.compose(text, Loader=_RoutingLoader)
        data = yaml.load(text, Loader=_RoutingLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}, {_yaml_problem(err, text)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with accounts, media_team and supervisor at the top")
    try:
        routing = RoutingConfig.model_validate(data)
    except ValidationError as err:
        lines = _line_index(node)
        problems = [_describe(e, lines) for e in err.errors()]
        raise ConfigError(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems)) from None
    _check_cross_references(routing, source, _line_index(node))
    return routing


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """YAML's own error, in words an editor of the file can act on, at the line to fix."""
    mark = getattr(err, "problem_mark", None)
    problem = str(getattr(err, "problem", None) or err)
    line = mark.line + 1 if mark else 0
    if "'@'" in problem or "'`'" in problem:
        char = "@" if "'@'" in problem else "`"
        return (f"line {line}: a value cannot start with '{char}' unless it is in quotes; officers and members "
                f"are numeric Telegram user ids, not @usernames ({ID_HELP_USER}); a keyword or a template "
                f"that starts with '{char}' goes in quotes")
    if "'\\t'" in problem or "\t" in problem:
        return f"line {line}: a tab in the indentation; indent with spaces only"
    bad = _misindented_line(text)
    if bad:
        return f"line {bad}; indent with spaces only, each key exactly like the other keys of its block"
    where = f"line {line}" if line else "unknown line"
    return f"{where}: not valid YAML ({problem}); check indentation and quotes"


def _misindented_line(text: str) -> str | None:
    """Where the indentation of a block-style file goes wrong, in words, or None.

    YAML reports a bad indentation where its parser gives up, often a line or a block
    later; this looks at the indentation alone. A line may go deeper only after a line
    that opens a block (ends with ':' or is a list item) and must come back to a level
    used above. A line between two neighbours that agree is the odd one out."""
    rows: list[tuple[int, int, bool]] = []  # (line number, indent, opens a block)
    lines = text.splitlines()
    depth = 0  # [ or { still open from an earlier line
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if depth > 0:
            depth = max(0, depth + _bracket_balance(raw))
            continue
        if not stripped or stripped.startswith("#"):
            continue
        body = re.sub(r"\s+#.*$", "", stripped)
        if body.endswith(("|", ">", "|-", ">-")):
            return None  # block scalars: leave them to YAML
        rows.append((number, len(raw) - len(raw.lstrip(" ")), body.endswith(":") or body.startswith("- ")))
        depth = max(0, _bracket_balance(raw))
    levels: list[tuple[int, int]] = [(0, 0)]  # (indent, the line that set it)
    first_soft: str | None = None  # a key ending with ':' followed by a line that is not deeper
    for i, (number, indent, opens) in enumerate(rows):
        previous = rows[i - 1] if i else None
        if indent > levels[-1][0]:
            if previous and previous[2]:
                levels.append((indent, number))
                continue
            if first_soft:
                return first_soft
            culprit = _odd_one_out(rows, i)
            if culprit == number and previous and i >= 2 and rows[i - 2][2]:
                return (f"{previous[0]}: wrong indentation: lines {previous[0]} and {number} belong to the same "
                        f"block but are indented differently ({previous[1]} and {indent} spaces)")
            return f"{culprit}: wrong indentation: this line is indented more than the line above it"
        if (previous and not first_soft and previous[2] and not lines[previous[0] - 1].lstrip().startswith("- ")
                and indent <= previous[1] and not (indent == previous[1] and lines[number - 1].lstrip().startswith("- "))):
            first_soft = (f"{number}: wrong indentation: line {previous[0]} ends with ':', so this line "
                          "should be indented more than it")
        above = levels[-1]
        while len(levels) > 1 and indent < levels[-1][0]:
            above = levels.pop()
        if levels[-1][0] != indent:
            if first_soft:
                return first_soft
            culprit = _odd_one_out(rows, i)
            if culprit != number:
                return f"{culprit}: wrong indentation: this line does not line up with the lines around it"
            return (f"{number}: wrong indentation: this line ({indent} spaces) lines up neither with line "
                    f"{levels[-1][1]} ({levels[-1][0]} spaces) nor with line {above[1]} ({above[0]} spaces)")
        levels[-1] = (indent, number)
    return None


def _odd_one_out(rows: list[tuple[int, int, bool]], i: int) -> int:
    """The line to blame when rows[i] is out of place: the line before it when it alone breaks a run."""
    here = rows[i][1]
    if i >= 2 and rows[i - 2][1] == here != rows[i - 1][1] and not rows[i - 2][2]:
        return rows[i - 1][0]
    if 1 <= i < len(rows) - 1 and rows[i + 1][1] == here != rows[i - 1][1] and not rows[i][2]:
        return rows[i - 1][0]
    return rows[i][0]


def _bracket_balance(line: str) -> int:
    """Open minus closed [ and { on a line, outside quotes and comments (roughly)."""
    balance, quote = 0, ""
    for char in line:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            balance += 1
        elif char in "]}":
            balance -= 1
    return balance


def _describe(error: Mapping[str, Any], lines: Mapping[tuple[str, ...], int]) -> str:
    loc = tuple(str(p) for p in error["loc"])
    line = _nearest_line(loc, lines)
    path = ".".join(loc) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"  line {line}: {path}: {message}{_hint(str(error['type']), loc, error.get('input'))}"


_LIST_EXAMPLES = {
    "officers": "[7101, 7102]", "members": "[5001, 5002]", "keywords": "[pkh, bansos bencana]",
    "before_deadline": '["1d", "2h"]', "extra_holidays": '["2026-12-24"]', "extra_workdays": '["2026-03-14"]',
}


def _hint(kind: str, loc: tuple[str, ...], value: Any) -> str:
    """How to fix one problem, told for the key it is on (a user id is not a group id)."""
    people = "officers" in loc or "members" in loc
    if kind in ("int_parsing", "int_type", "int_from_float"):
        if people:
            username = " (not an @username)" if isinstance(value, str) and value.strip().startswith("@") else ""
            return (f" — write the person's Telegram user id, a positive whole number such as 123456789{username}; "
                    f"{ID_HELP_USER}")
        if loc and loc[-1] == "chat_id":
            return f" — write the group's chat id, a negative whole number such as -1001234567890; {ID_HELP_GROUP}"
        return " — write a whole number"
    if kind in ("tuple_type", "list_type"):
        field = next((part for part in reversed(loc) if part in _LIST_EXAMPLES), "")
        example = _LIST_EXAMPLES.get(field, "[a, b]")
        return f" — write a list in square brackets, e.g. {field + ': ' if field else ''}{example}"
    return _HINTS.get(kind, "")


_HINTS = {
    "missing": " — add this key",
    "extra_forbidden": " — unknown key: check its spelling or remove it",
    "date_from_datetime_parsing": " — write a date as YYYY-MM-DD",
    "string_pattern_mismatch": "",
    "too_short": " — the list or mapping must not be empty",
}


def _check_cross_references(routing: RoutingConfig, source: str, lines: Mapping[tuple[str, ...], int]) -> None:
    problems: list[str] = []
    seen: dict[int, str] = {}
    for acc_key, acc in routing.accounts.items():
        for unit_key, unit in acc.units.items():
            # Two accounts may share one group for the same unit (one humas team); two units may not.
            owner = seen.setdefault(unit.chat_id, f"{acc_key}.{unit_key}")
            if owner.split(".")[1] != unit_key:
                line = lines.get(("accounts", acc_key, "units", unit_key, "chat_id"), 0)
                problems.append(
                    f"  line {line}: accounts.{acc_key}.units.{unit_key}.chat_id: the same group as {owner}; "
                    "give each unit its own Telegram group"
                )
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


def _line_index(node: yaml.Node | None) -> dict[tuple[str, ...], int]:
    """Map each YAML path to its 1-based line, so errors can point at it."""
    index: dict[tuple[str, ...], int] = {}

    def walk(current: yaml.Node, path: tuple[str, ...]) -> None:
        index[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                child = path + (str(key_node.value),)
                walk(value_node, child)
                index[child] = key_node.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                walk(item, path + (str(i),))

    if node is not None:
        walk(node, ())
    return index


def _nearest_line(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int]) -> int:
    """The line of the deepest part of loc that exists in the file (a missing key has none)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def load_settings(env: Mapping[str, str] | None = None, config_path: str | Path | None = None) -> Settings:
    """routing.yaml + environment -> Settings. Secrets are read here and nowhere else."""
    env = os.environ if env is None else env
    path = Path(config_path or env.get("TRIAGE_CONFIG", "routing.yaml"))
    routing = load_routing(path)
    return Settings(
        routing=routing,
        config_path=path,
        db_path=Path(env.get("TRIAGE_DB", "triage.db")),
        telegram_token=env.get("TELEGRAM_BOT_TOKEN") or None,
        telegram_api_url=env.get("TELEGRAM_API_URL", DEFAULT_TELEGRAM_URL).rstrip("/"),
        instagram_graph_url=env.get("INSTAGRAM_GRAPH_URL", DEFAULT_GRAPH_URL).rstrip("/"),
        instagram_tokens={k: env.get(a.token_env) or None for k, a in routing.accounts.items()},
        webhook_verify_token=env.get("INSTAGRAM_WEBHOOK_VERIFY_TOKEN") or None,
        app_secret=env.get("INSTAGRAM_APP_SECRET") or None,
    )
