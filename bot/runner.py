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

from bot import jobs
from bot.answers import hide_new_spam
from bot.app import Services, build_application, make_deliverer
from bot.config import Settings
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
                                             destinations=jobs.ticket_destinations(self.settings))
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

    async def sweep(self, job: Callable[..., Any], now: datetime | None = None) -> Any:
        """Run a store-reading job (reminders, digest, report) and wake the sender."""
        result = job(self.settings, self.store, now=now or self.services.clock())
        if asyncio.iscoroutine(result):
            result = await result
        jobs.deliver_alerts(self.settings, self.store, now=now or self.services.clock())
        self.deliverer.wake.set()
        return result


def build_runtime(settings: Settings, *, classifier: Classifier, limits: Limits = Limits(),
                  clock: Callable[[], datetime] | None = None) -> Runtime:
    store = Store(settings.db_path)
    services = Services(settings, store, clock or (lambda: datetime.now(timezone.utc)), limits)
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
    for name, (job, trigger) in extra_jobs.items():
        scheduler.add_job(runtime.sweep, args=[job], id=name, **trigger)


async def serve(runtime: Runtime, stop: asyncio.Event,
                extra_jobs: dict[str, tuple[Callable[..., Any], dict[str, Any]]] | None = None,
                *, poll: bool = True) -> None:
    """Run until `stop` is set; then stop taking updates, finish the send in flight, close.
    With poll=False nothing polls Instagram by itself (tests and the demo call poll_once)."""
    routing = runtime.settings.routing
    scheduler = AsyncIOScheduler(
        timezone=ZoneInfo(routing.timezone),
        job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
    )
    schedule(runtime, scheduler, extra_jobs or {}, poll=poll)
    async with runtime.app:
        await runtime.app.start()
        await runtime.app.updater.start_polling(drop_pending_updates=False)
        sender = asyncio.create_task(runtime.deliverer.run(stop))
        scheduler.start()
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            await runtime.app.updater.stop()
            stop.set()
            await sender
            await runtime.app.stop()
            await runtime.services.aclose()
    runtime.store.close()


def standard_jobs(settings: Settings) -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """The scheduled sweeps besides polling, in the routing time zone: reminders every
    minute, the digest on weekday mornings, the monthly report on the first days of a month
    (each job itself skips holidays and days that are not the first working day), and the
    Instagram token refresh at night."""
    from bot import digest_job, reminders, tokens

    at = settings.routing.digest.time
    return {
        "remind": (reminders.sweep, {"trigger": "interval", "minutes": 1}),
        # Checked daily, refreshed weekly: a bot down on the day catches up the next.
        "tokens": (tokens.refresh_tokens, {"trigger": "cron", "hour": 4, "minute": 30}),
        "digest": (digest_job.send_digest,
                   {"trigger": "cron", "day_of_week": "mon-fri", "hour": at.hour, "minute": at.minute}),
        "report": (digest_job.send_monthly_report,
                   {"trigger": "cron", "day": "1-10", "hour": at.hour, "minute": at.minute}),
    }


def run_forever(settings: Settings, classifier: Classifier,
                extra_jobs: dict[str, tuple[Callable[..., Any], dict[str, Any]]] | None = None) -> None:
    """`triage run`: until SIGTERM or Ctrl-C."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runtime = build_runtime(settings, classifier=classifier)
        await serve(runtime, stop, extra_jobs)

    asyncio.run(main())
