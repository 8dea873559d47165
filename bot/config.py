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
from typing import TYPE_CHECKING, Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from classifiers.base import AccountRules, UnitRules

if TYPE_CHECKING:
    from bot.deadlines import WorkingCalendar

DEFAULT_GRAPH_URL = "https://graph.instagram.com/v23.0"
DEFAULT_TELEGRAM_URL = "https://api.telegram.org"
_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class ConfigError(Exception):
    """routing.yaml or the environment is wrong; the message is meant for a person."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingHours(_Model):
    start: dt.time = dt.time(8, 0)
    end: dt.time = dt.time(16, 0)

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
    time: dt.time = dt.time(7, 30)


class PollingConfig(_Model):
    interval_minutes: int = Field(5, ge=1, le=1440)
    # With webhooks live, polling is only the safety net for events Meta failed to deliver.
    interval_minutes_with_webhooks: int = Field(30, ge=1, le=1440)
    backfill_days: int = Field(7, ge=0, le=60)
    media_limit: int = Field(50, ge=1, le=100)


class ChatConfig(_Model):
    chat_id: int
    members: tuple[int, ...] = ()


class UnitConfig(_Model):
    name: str = Field(min_length=1)
    chat_id: int
    officers: tuple[int, ...] = ()
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


def parse_routing(text: str, source: str = "routing.yaml") -> RoutingConfig:
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "unknown line"
        raise ConfigError(f"{source}, {where}: not valid YAML ({getattr(err, 'problem', err)}); check indentation and quotes") from None
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


def _describe(error: Mapping[str, Any], lines: Mapping[tuple[str, ...], int]) -> str:
    loc = tuple(str(p) for p in error["loc"])
    line = _nearest_line(loc, lines)
    path = ".".join(loc) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = _HINTS.get(str(error["type"]), "")
    return f"  line {line}: {path}: {message}{hint}"


_HINTS = {
    "missing": " — add this key",
    "extra_forbidden": " — unknown key: check its spelling or remove it",
    "int_parsing": " — write a whole number, e.g. -1001234567890",
    "int_type": " — write a whole number, e.g. -1001234567890",
    "time_parsing": " — write a time as \"HH:MM\" in quotes",
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
