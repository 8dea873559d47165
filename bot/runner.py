"""`triage run`: the bot, the pollers and the scheduled jobs in one process.

APScheduler runs the jobs in the routing time zone with coalescing and a
misfire grace, so a bot that was down for an hour catches up once instead of
flooding the groups. The jobs read the store and act; stopping (SIGTERM) lets
the send in flight finish and leaves every unsent row in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from bot import jobs
from bot.answers import hide_new_spam
from bot.app import Services, build_application, make_deliverer
from bot.config import Settings, StartupError
from bot.delivery import Limits
from bot.store import Store
from classifiers.base import Classifier

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The running bot's parts, so tests and the demo can drive the same code as production."""

    settings: Settings
    store: Store
    classifier: Classifier
    services: Services
    app: Any
    deliverer: Any
    poll_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def poll_once(self, now: datetime | None = None) -> list[int]:
        """Poll every account, triage what came in, queue alerts; returns the new ticket ids."""
        async with self.poll_lock:  # an overlapping run would only repeat work
            now = now or self.services.clock()
            for account in self.settings.routing.accounts:
                if self.settings.instagram_tokens.get(account):
                    report = await jobs.poll_account(self.settings, self.store, account, now=now)
                    log.info("poll %s: %s new, %s calls", account, report.new_messages, report.calls)
            made = await jobs.triage_pending(self.settings, self.store, self.classifier, now=now,
                                             destinations=jobs.ticket_destinations(self.settings),
                                             client_for=self.services.instagram)
            await hide_new_spam(self.store, self.settings.routing, made, self.services.instagram, now=now)
            jobs.deliver_alerts(self.settings, self.store, now=now)
            self.deliverer.wake.set()
            return made

    async def reconcile_once(self, now: datetime | None = None) -> list[int]:
        """Read every account's backfill window again (daily), then triage what was missed."""
        async with self.poll_lock:
            now = now or self.services.clock()
            for account in self.settings.routing.accounts:
                if self.settings.instagram_tokens.get(account):
                    await jobs.poll_account(self.settings, self.store, account, now=now, full=True)
            made = await jobs.triage_pending(self.settings, self.store, self.classifier, now=now,
                                             destinations=jobs.ticket_destinations(self.settings))
            jobs.deliver_alerts(self.settings, self.store, now=now)
            self.deliverer.wake.set()
            return made

    async def retrain_spam_once(self, now: datetime | None = None) -> Any:
        """The nightly spam refresh from the media team's corrections (seconds, off the event loop)."""
        from bot import spam_drift

        now = now or self.services.clock()
        result = await asyncio.to_thread(spam_drift.retrain_spam, self.settings, self.store, self.classifier, now=now)
        self.deliverer.wake.set()
        return result

    async def sweep(self, job: Callable[..., Any], now: datetime | None = None) -> Any:
        """Run a store-reading job (reminders, digest, report) and wake the sender."""
        result = job(self.settings, self.store, now=now or self.services.clock())
        if asyncio.iscoroutine(result):
            result = await result
        jobs.deliver_alerts(self.settings, self.store, now=now or self.services.clock())
        self.deliverer.wake.set()
        return result


def build_runtime(settings: Settings, *, classifier: Classifier, limits: Limits = Limits(),
                  clock: Callable[[], datetime] | None = None, reply_gap: float | None = None) -> Runtime:
    """`reply_gap` overrides the seconds between group replies (tests squeeze the minute)."""
    store = Store(settings.db_path)
    services = Services(settings, store, clock or (lambda: datetime.now(timezone.utc)), limits, reply_gap)
    app = build_application(settings, services)
    deliverer = make_deliverer(app, services)
    app.bot_data["deliverer"] = deliverer
    return Runtime(settings, store, classifier, services, app, deliverer)


def schedule(runtime: Runtime, scheduler: AsyncIOScheduler,
             extra_jobs: dict[str, tuple[Callable[..., Any], dict[str, Any]]], *, poll: bool = True) -> None:
    routing = runtime.settings.routing
    if poll:  # the first poll at once, then every interval (slower when webhooks bring events)
        webhooks = bool(runtime.settings.app_secret)
        minutes = routing.polling.interval_minutes_with_webhooks if webhooks else routing.polling.interval_minutes
        scheduler.add_job(runtime.poll_once, "interval", minutes=minutes, id="poll",
                          next_run_time=datetime.now(ZoneInfo(routing.timezone)))
        # Once a night, the safety net under the safety net: counts can hide changes.
        scheduler.add_job(runtime.reconcile_once, "cron", hour=3, minute=0, id="reconcile")
        # New spam campaigns, learnt from the day's Koreksi while the accounts are quiet.
        scheduler.add_job(runtime.retrain_spam_once, "cron", hour=2, minute=30, id="retrain-spam")
    for name, (job, trigger) in extra_jobs.items():
        scheduler.add_job(runtime.sweep, args=[job], id=name, **trigger)


async def serve(runtime: Runtime, stop: asyncio.Event,
                extra_jobs: dict[str, tuple[Callable[..., Any], dict[str, Any]]] | None = None,
                *, poll: bool = True, on_started: Callable[[Any], None] | None = None) -> None:
    """Run until `stop` is set; then stop taking updates, finish the send in flight, close.
    With poll=False nothing polls Instagram by itself (tests and the demo call poll_once).
    A start that fails (token refused, Telegram unreachable) raises StartupError; once
    started, on_started gets the bot's own Telegram user."""
    routing = runtime.settings.routing
    scheduler = AsyncIOScheduler(
        timezone=ZoneInfo(routing.timezone),
        job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
    )
    schedule(runtime, scheduler, extra_jobs or {}, poll=poll)
    app = runtime.app
    try:
        await app.initialize()  # getMe: the token is checked here
        await app.start()
        await app.updater.start_polling(drop_pending_updates=False)
    except TelegramError as err:
        await _close_after_failed_start(runtime)
        raise telegram_startup_error(err, runtime.settings.telegram_api_url) from None
    sender = asyncio.create_task(runtime.deliverer.run(stop))
    replier = asyncio.create_task(runtime.services.replier.run(stop))
    scheduler.start()
    if on_started:
        on_started(app.bot.bot)
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await app.updater.stop()
        stop.set()
        await sender
        await replier
        await app.stop()
        await app.shutdown()
        await runtime.services.aclose()
        runtime.store.close()


async def _close_after_failed_start(runtime: Runtime) -> None:
    app = runtime.app
    try:
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
    except TelegramError:
        pass  # already failing: the first error is the one to report
    await runtime.services.aclose()
    runtime.store.close()


def telegram_startup_error(err: TelegramError, api_url: str) -> StartupError:
    """One line in plain words for a Telegram error met while starting (the token never appears)."""
    if isinstance(err, InvalidToken):
        return StartupError("Telegram refused the bot token: set TELEGRAM_BOT_TOKEN to the token @BotFather gave "
                            "for this bot (send /token to @BotFather to see it again)")
    if isinstance(err, NetworkError):  # TimedOut is one too
        reason = str(err).removeprefix("httpx.")
        return StartupError(f"cannot reach Telegram at {api_url} ({reason}): check this server's internet "
                            "connection, its firewall or proxy, and TELEGRAM_API_URL")
    if isinstance(err, Conflict):
        return StartupError("another copy of the bot is already taking this token's updates: stop it first "
                            "(only one `triage run` per bot token)")
    return StartupError(f"Telegram refused to start the bot: {err.message}")


def startup_summary(settings: Settings, bot: Any, classifier: Any,
                    extra_jobs: dict[str, tuple[Callable[..., Any], dict[str, Any]]]) -> str:
    """What the operator should see once the bot runs: who it is, what it watches, when it acts."""
    routing = settings.routing
    accounts = []
    for key, acc in routing.accounts.items():
        token = "" if settings.instagram_tokens.get(key) else f", NO TOKEN: set {acc.token_env}"
        accounts.append(f"{key} ({acc.name}, {len(acc.units)} units{token})")
    groups = {routing.media_team.chat_id, routing.supervisor.chat_id}
    groups |= {u.chat_id for acc in routing.accounts.values() for u in acc.units.values()}
    webhooks = bool(settings.app_secret)
    minutes = routing.polling.interval_minutes_with_webhooks if webhooks else routing.polling.interval_minutes
    at = routing.digest.time.strftime("%H:%M")
    plan = [f"poll Instagram every {minutes} min ({'webhooks on' if webhooks else 'webhooks off'}), "
            "full re-read at 03:00"]
    if "remind" in extra_jobs:
        plan.append("reminders every minute")
    if "digest" in extra_jobs:
        plan.append(f"digest Mon-Fri at {at}")
    if "report" in extra_jobs:
        plan.append(f"monthly report on the first working day at {at}")
    if "tokens" in extra_jobs:
        plan.append("Instagram token refresh check at 04:30")
    return "\n".join([
        f"triage run: started as @{getattr(bot, 'username', '?')} (Telegram user id {getattr(bot, 'id', '?')})",
        f"  accounts: {', '.join(accounts)}",
        f"  Telegram groups: {len(groups)} (media team {routing.media_team.chat_id}, "
        f"supervisor {routing.supervisor.chat_id}, {len(groups) - 2} unit groups)",
        f"  classifier: {getattr(classifier, 'choice', type(classifier).__name__)}",
        f"  schedule ({routing.timezone}): " + "; ".join(plan),
        f"  database: {settings.db_path.resolve()}; routing: {settings.config_path.resolve()}",
        "  stop with Ctrl-C or SIGTERM; -v logs every poll and send",
    ])


def standard_jobs(settings: Settings) -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """The scheduled sweeps besides polling, in the routing time zone: reminders every
    minute, the digest on weekday mornings, the monthly report on the first days of a month
    (each job itself skips holidays and days that are not the first working day), and the
    Instagram token refresh at night."""
    from bot import digest_job, reminders, surge_job, tokens

    at = settings.routing.digest.time
    return {
        "remind": (reminders.sweep, {"trigger": "interval", "minutes": 1}),
        "surges": (surge_job.sweep, {"trigger": "interval", "minutes": 1}),
        # Checked daily, refreshed weekly: a bot down on the day catches up the next.
        "tokens": (tokens.refresh_tokens, {"trigger": "cron", "hour": 4, "minute": 30}),
        "digest": (digest_job.send_digest,
                   {"trigger": "cron", "day_of_week": "mon-fri", "hour": at.hour, "minute": at.minute}),
        "report": (digest_job.send_monthly_report,
                   {"trigger": "cron", "day": "1-10", "hour": at.hour, "minute": at.minute}),
    }


def run_forever(settings: Settings, classifier: Classifier,
                extra_jobs: dict[str, tuple[Callable[..., Any], dict[str, Any]]] | None = None) -> None:
    """`triage run`: until SIGTERM or Ctrl-C. Prints a summary once started; a failed
    start raises StartupError."""

    def started(bot: Any) -> None:
        print(startup_summary(settings, bot, classifier, extra_jobs or {}), flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runtime = build_runtime(settings, classifier=classifier)
        await serve(runtime, stop, extra_jobs, on_started=started)

    asyncio.run(main())
