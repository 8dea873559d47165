"""The `triage` command line: thin, each command loads settings and calls one job.

Every job takes --now, so a person or a test can run it for any moment.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo

from bot.config import ConfigError, Settings, StartupError, load_routing, load_settings
from bot.triage import STATUSES

log = logging.getLogger("triage")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
# The shipped model's backends: see classifiers/MODEL_CARD.md for what each measures.
BACKENDS = ["default", "fast", "ngram", "transformer_only"]


class CommandError(Exception):
    """A problem the person at the terminal can fix; printed without a traceback."""


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def parse_now(text: str | None, zone: str = "Asia/Jakarta") -> datetime:
    """--now as ISO 8601; a time without an offset is read in the routing time zone."""
    if not text:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--now '{text}' is not an ISO date-time; write e.g. 2026-11-27T09:30 or 2026-11-27T09:30+07:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_path=getattr(args, "config", None))


def _open_store(settings: Settings) -> Any:
    from bot.store import Store

    return Store(settings.db_path)


def _classifier(settings: Settings, backend: str | None = None) -> Any:
    from bot.spam_drift import apply_saved
    from classifiers.pipeline import load_classifier

    classifier = load_classifier(settings.routing.account_rules(),
                                 backend=backend or os.environ.get("TRIAGE_CLASSIFIER", "default"))
    apply_saved(classifier, settings)  # the spam model the corrections taught, if one was adopted
    return classifier


@command("check-config")
def cmd_check_config(args: argparse.Namespace) -> int:
    path = Path(args.file or os.environ.get("TRIAGE_CONFIG", "routing.yaml"))
    routing = load_routing(path)
    units = sum(len(a.units) for a in routing.accounts.values())
    print(f"{path}: OK — {len(routing.accounts)} account(s), {units} unit(s), deadline {routing.deadline.working_days} working days")
    return 0


@command("poll")
def cmd_poll(args: argparse.Namespace) -> int:
    from bot import jobs

    settings = _settings(args)
    now = parse_now(args.now, settings.routing.timezone)
    accounts = [args.account] if args.account else list(settings.routing.accounts)
    unknown = [a for a in accounts if a not in settings.routing.accounts]
    if unknown:
        raise CommandError(f"unknown account {unknown[0]}; routing.yaml has: {', '.join(settings.routing.accounts)}")
    store = _open_store(settings)
    failed = False
    for account in accounts:
        report = asyncio.run(jobs.poll_account(settings, store, account, now=now, full=args.full))
        status = f"stopped ({report.stopped})" if report.stopped else f"error ({report.error})" if report.error else "ok"
        print(f"{account}: {report.new_messages} new message(s), {report.calls} API call(s), {report.skipped} skipped — {status}")
        failed = failed or bool(report.error or report.stopped)
    made = asyncio.run(jobs.triage_pending(settings, store, _classifier(settings), now=now,
                                           destinations=jobs.ticket_destinations(settings)))
    print(f"{len(made)} new ticket(s)")
    for ticket in (store.ticket(t) for t in made):
        if ticket:
            print(f"  #{ticket.id} {ticket.account}/{ticket.unit or '-'} {ticket.status} {','.join(ticket.labels)}: {ticket.text[:70]!r}")
    return 1 if failed else 0


@command("resume")
def cmd_resume(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.account not in settings.routing.accounts:
        raise CommandError(f"unknown account {args.account}")
    _open_store(settings).resume_polling(args.account)
    print(f"{args.account}: polling resumed")
    return 0


@command("refresh-tokens")
def cmd_refresh_tokens(args: argparse.Namespace) -> int:
    from bot import tokens

    settings = _settings(args)
    now = parse_now(args.now, settings.routing.timezone)
    store = _open_store(settings)
    reports = asyncio.run(tokens.refresh_tokens(settings, store, now=now, force=args.force))
    for report in reports:
        until = f", valid until {report.expires_at:%Y-%m-%d}" if report.expires_at else ""
        print(f"{report.account}: {report.outcome}{until}{f' ({report.error})' if report.error else ''}")
    return 1 if any(r.outcome == "failed" for r in reports) else 0


@command("tickets")
def cmd_tickets(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open_store(settings)
    for ticket in store.tickets(status=args.status, unit=args.unit, account=args.account):
        if args.json:
            print(json.dumps(ticket.as_json(), ensure_ascii=False))
        else:
            due = ticket.deadline.astimezone(ZoneInfo(settings.routing.timezone)).strftime("%d %b %H:%M") if ticket.deadline else "-"
            print(f"#{ticket.id:<5} {ticket.account:<9} {ticket.unit or '-':<10} {ticket.status:<12} due {due:<12} "
                  f"{','.join(ticket.labels):<28} {ticket.text[:60]!r}")
    return 0


@command("classify")
def cmd_classify(args: argparse.Namespace) -> int:
    from classifiers.commands import classify_stream

    settings = _settings(args)
    # Bytes that are not UTF-8 reach the stream as escapes, so they make one bad line, not a crash.
    raw = getattr(sys.stdin, "buffer", None)
    lines = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape") if raw is not None else sys.stdin
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    return classify_stream(lines, sys.stdout, _classifier(settings, args.backend),
                           accounts=list(settings.routing.accounts)) or 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    from classifiers.commands import evaluate_file

    settings = _settings(args)
    classifier = _classifier(settings, args.backend)
    if args.file:
        report = evaluate_file(Path(args.file), classifier)
        print(report if isinstance(report, str) else getattr(report, "text", report))
    if args.public:
        from classifiers.public_sets import format_scores, score_sets

        scores = score_sets(classifier, Path(args.public), limit=args.limit)
        print(json.dumps(scores, ensure_ascii=False) if args.json else format_scores(scores))
    if not args.file and not args.public:
        raise SystemExit("triage eval: give a labelled FILE, --public DIR, or both")
    return 0


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    from classifiers.commands import PROJECT_ROOT, train

    # The routing rules of $TRIAGE_CONFIG or the project's routing.yaml (not the working directory's).
    routing = Path(os.environ.get("TRIAGE_CONFIG", PROJECT_ROOT / "routing.yaml"))
    train(
        [Path(p) for p in args.train] if args.train else None,
        Path(args.out) if args.out else None,
        rules=load_routing(routing).account_rules(),
        feedback=Path(args.feedback) if args.feedback else None,
        judol=Path(args.judol) if args.judol else None,
        smsa=Path(args.smsa) if args.smsa else None,
        eval_file=Path(args.eval) if args.eval else None,
        seed=args.seed,
        skip_transformer=args.skip_transformer,
        sentiment_weight=args.sentiment_weight,
        sentiment_rows=args.sentiment_rows,
        public=Path(args.public) if args.public else None,
        reuse_transformer=Path(args.reuse_transformer) if args.reuse_transformer else None,
    )
    return 0


@command("surges")
def cmd_surges(args: argparse.Namespace) -> int:
    """Close the surges quiet at a moment (their cards get the summary); list the open ones."""
    from bot.surge_job import sweep

    settings = _settings(args)
    now = parse_now(args.now, settings.routing.timezone)
    store = _open_store(settings)
    for surge_id in sweep(settings, store, now=now):
        print(f"surge #{surge_id} closed")
    for row in store.surges.open_surge_rows():
        tickets = len(store.surges.tickets(int(row["id"])))
        groups = len(store.surges.groups(int(row["id"])))
        print(f"surge #{row['id']} open since {row['opened_at']}: {row['account']} post {row['media_id']}, "
              f"{tickets} ticket(s) in {groups} group(s), last ticket {row['last_ticket_at']}")
    if args.send:
        _send(settings, store, now)
    return 0


@command("remind")
def cmd_remind(args: argparse.Namespace) -> int:
    from bot.reminders import sweep

    settings = _settings(args)
    now = parse_now(args.now, settings.routing.timezone)
    store = _open_store(settings)
    notices = sweep(settings, store, now=now)
    for notice in notices:
        print(f"{notice.kind:<10} chat {notice.chat_id} ticket(s) {', '.join(f'#{t}' for t in notice.ticket_ids)}")
    print(f"{len(notices)} new notice(s) queued")
    if args.send:
        _send(settings, store, now)
    return 0


@command("digest")
def cmd_digest(args: argparse.Namespace) -> int:
    from bot.digest import build_digest, render_digest_text
    from bot.digest_job import send_digest

    settings = _settings(args)
    now = parse_now(args.now, settings.routing.timezone)
    store = _open_store(settings)
    if args.send:
        print(send_digest(settings, store, now=now))
        _send(settings, store, now)
    else:
        text = render_digest_text(build_digest(store, settings.routing, now))
        print(text if args.html else telegram_html_to_text(text))
    return 0


def telegram_html_to_text(text: str) -> str:
    """A message written for Telegram (parse_mode HTML) as a terminal shows it: no tags, no entities."""
    import html
    import re

    text = re.sub(r'<a href="([^"]*)">(.*?)</a>', r"\2 (\1)", text, flags=re.S)
    return html.unescape(re.sub(r"</?[a-zA-Z][^>]*>", "", text))


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    import re

    from bot.report import build_report, write_report

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        raise CommandError(f"--month '{args.month}' must look like 2026-11")
    settings = _settings(args)
    store = _open_store(settings)
    now = parse_now(args.now, settings.routing.timezone)
    html_path, pdf_path = write_report(build_report(store, settings.routing, args.month, now=now), Path(args.out))
    print(f"report written: {html_path} and {pdf_path}")
    if args.send:
        store.enqueue(f"report:{args.month}:manual:{now.isoformat()}", settings.routing.media_team.chat_id, "document",
                      now=now, payload={"path": str(pdf_path), "filename": f"laporan-evaluasi-{args.month}.pdf",
                                        "caption": f"Laporan evaluasi bulanan {args.month}"})
        _send(settings, store, now)
    return 0


@command("deliver")
def cmd_deliver(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _send(settings, _open_store(settings), parse_now(args.now, settings.routing.timezone))
    return 0


def _send(settings: Settings, store: Any, now: datetime) -> None:
    from telegram.error import InvalidToken, NetworkError

    from bot.app import deliver_outbox

    try:
        report = asyncio.run(deliver_outbox(settings, store, now=now))
    except (NetworkError, InvalidToken) as err:  # before anything was sent: the outbox keeps every row
        why = "refused the bot token" if isinstance(err, InvalidToken) else f"is unreachable ({err})"
        raise CommandError(f"Telegram at {settings.telegram_api_url} {why}; nothing was sent, "
                           "the outbox keeps every message for the next try") from None
    print(f"sent {report.sent} message(s) to Telegram ({report.batched} ticket(s) in batches, {report.failed} failed)")


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.scenario import main as demo_main

    return demo_main(serve_web=args.serve, port=args.port)


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    from bot.runner import run_forever, standard_jobs

    settings = _settings(args)
    run_forever(settings, _classifier(settings), standard_jobs(settings))
    return 0


@command("backup")
def cmd_backup(args: argparse.Namespace) -> int:
    from bot.backup import BackupError, backup_database

    db_path = Path(os.environ.get("TRIAGE_DB", "triage.db"))
    try:
        written = backup_database(db_path, Path(args.out))
    except BackupError as err:
        raise CommandError(str(err)) from None
    print(f"{db_path} backed up to {written} ({written.stat().st_size:,} bytes, mode 0600)")
    return 0


@command("doctor")
def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the live services the bot needs, one line per check; exit 1 if any failed."""
    from bot import doctor

    settings = _settings(args)
    store = _open_store(settings) if settings.db_path.exists() else None

    def token_for(account: str) -> str | None:
        if not settings.instagram_tokens.get(account):
            return None
        if store is None:
            return settings.instagram_tokens[account]
        from bot.tokens import current_token  # the refreshed token in the store, as the bot uses it

        return current_token(settings, store, account, datetime.now(timezone.utc))

    webhook_url = args.webhook_url or os.environ.get("TRIAGE_WEBHOOK_URL") or None
    checks = asyncio.run(doctor.run_checks(settings, token_for=token_for, webhook_url=webhook_url))
    if store is not None:
        store.close()
    for check in checks:
        print(check.line(args.lang))
    print(doctor.summary(checks, args.lang))
    return 1 if any(c.level == doctor.FAIL for c in checks) else 0


@command("webhook")
def cmd_webhook(args: argparse.Namespace) -> int:
    """Serve Instagram webhooks: store what arrives, triage it; the worker delivers it."""
    import signal

    from bot import jobs
    from bot.webhooks import start_webhook_server, webhook_app

    settings = _settings(args)
    if not settings.app_secret:
        raise CommandError("set INSTAGRAM_APP_SECRET to the Instagram app secret (App Dashboard > Instagram > API setup)")
    if not settings.webhook_verify_token:
        log.warning("INSTAGRAM_WEBHOOK_VERIFY_TOKEN is not set: Meta's subscription handshake will be refused")
    classifier = _classifier(settings)  # loaded once, before listening
    store = _open_store(settings)
    port = args.port or int(os.environ.get("PORT", "8080"))

    async def on_stored(new_ids: list[str]) -> None:
        now = datetime.now(timezone.utc)
        made = await jobs.triage_pending(settings, store, classifier, now=now,
                                         destinations=jobs.ticket_destinations(settings))
        jobs.deliver_alerts(settings, store, now=now)
        log.info("webhook: %d new message(s), %d new ticket(s)", len(new_ids), len(made))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            runner = await start_webhook_server(webhook_app(settings, store, on_stored), args.host, port)
        except OSError as err:
            store.close()
            raise StartupError(f"cannot listen on {args.host}:{port} ({err.strerror or err}): another process "
                               "uses that port (`ss -ltnp` shows which) or the address is not this machine's; "
                               "choose another with --port or $PORT") from None
        print(f"listening for Instagram webhooks on {args.host}:{port}/webhooks/instagram", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()  # waits for triage in flight
            store.close()

    asyncio.run(serve())
    return 0


@command("retrain-spam")
def cmd_retrain_spam(args: argparse.Namespace) -> int:
    from bot.spam_drift import retrain_spam

    settings = _settings(args)
    store = _open_store(settings)
    now = parse_now(args.now, settings.routing.timezone)
    result = retrain_spam(settings, store, _classifier(settings, "ngram"), now=now)
    if result is None:
        print("no new corrections since the last retraining; nothing to do")
        return 0
    print(("adopted" if result.adopted else f"kept the current model ({result.reason})")
          + f": {result.corrections} corrections, {result.held_out} held out, {json.dumps(result.figures)}")
    if args.send:
        _send(settings, store, now)
    return 0


@command("export-feedback")
def cmd_export_feedback(args: argparse.Namespace) -> int:
    settings = _settings(args)
    count = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for record in _open_store(settings).feedback_records():
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    print(f"{count} correction(s) written to {args.out}; train with: triage train --feedback {args.out}")
    return 0


def _row_count(text: str) -> int:
    """A whole number of rows, at least 1 (a negative count would silently drop rows)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; write e.g. 2000") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} rows: write at least 1, or leave it out to use all rows")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage", description="Triage Instagram comments and DMs of a ministry to its units on Telegram.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log more: every poll, send and scheduled job (default: warnings only)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", help="routing.yaml to use (default: $TRIAGE_CONFIG or routing.yaml)")
        # also after the command (`triage run -v`); SUPPRESS keeps a -v given before it
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more")
        return p

    p = add("check-config", "Check routing.yaml and print what is wrong, with line numbers.")
    p.add_argument("file", nargs="?", help="the file to check (default: $TRIAGE_CONFIG or routing.yaml)")
    p = add("poll", "Poll Instagram once for new comments and DMs, classify them and make tickets.")
    p.add_argument("--account", help="only this account key")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p.add_argument("--full", action="store_true",
                   help="read the whole backfill window again (the nightly reconciliation), not only what changed")
    p = add("resume", "Resume polling an account that was stopped (after its token was renewed).")
    p.add_argument("account")
    p = add("refresh-tokens", "Refresh the Instagram tokens that are due (weekly; `triage run` does it at night).")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p.add_argument("--force", action="store_true", help="refresh every token now, due or not")
    p = add("tickets", "List tickets.")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--unit")
    p.add_argument("--account")
    p.add_argument("--json", action="store_true", help="JSON Lines, one ticket a line")
    p = add("classify", "Classify JSON Lines from stdin (id, account, channel, text) to JSON Lines on stdout.")
    p.add_argument("--backend", choices=BACKENDS, help="classifier backend (default: the shipped default)")
    p = add("eval", "Evaluate the classifier on a labelled JSON Lines file and/or the real public sets.")
    p.add_argument("file", nargs="?", help="labelled JSON Lines (LABELS.md format)")
    p.add_argument("--backend", choices=BACKENDS)
    p.add_argument("--public", help="shared/data/public: score the test parts of the real sets against their "
                                    "labels mapped to ours (classifiers/public_sets.py)")
    p.add_argument("--limit", type=int, default=None, help="at most this many items of each real set")
    p.add_argument("--json", action="store_true", help="the real-set figures as JSON")
    p = add("train", "Train the classifier from labelled JSON Lines files and write the model artifacts.")
    p.add_argument("--train", nargs="+", help="training files (default: classifiers/data/train/*.jsonl)")
    p.add_argument("--out", help="artifact folder (default: classifiers/model)")
    p.add_argument("--feedback", help="corrections exported with `triage export-feedback`")
    p.add_argument("--judol", help="path to judol_youtube/dataset_judol_labelled.csv (extra spam data)")
    p.add_argument("--smsa", help="path to indonlu_smsa folder (benchmark; weak negative data with --sentiment-weight)")
    p.add_argument("--sentiment-weight", type=float, default=None,
                   help="weight of SmSA train rows as `negative` data (default: the model card's choice)")
    p.add_argument("--sentiment-rows", type=_row_count, default=None,
                   help="how many SmSA train rows (a seeded sample) to use (default: all)")
    p.add_argument("--eval", help="labelled file to evaluate on after training (never trained on)")
    p.add_argument("--public", help="shared/data/public: the training parts of the real sets join training; "
                                    "their test parts are measured")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--skip-transformer", action="store_true", help="train only the fast n-gram parts")
    p.add_argument("--reuse-transformer", metavar="DIR",
                   help="keep this fine-tuned transformer (e.g. classifiers/model/transformer) instead of training "
                        "one; its trained_on.txt keeps the records it learnt out of the held-out tuning")
    p = add("remind", "Queue the reminders, nudges and escalations due at a moment (and send them with --send).")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p.add_argument("--send", action="store_true", help="also deliver the outbox to Telegram")
    p = add("surges", "Close the surges that have been quiet long enough at a moment, and list the open ones.")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p.add_argument("--send", action="store_true", help="also deliver the outbox (the closed cards) to Telegram")
    p = add("digest", "Print the supervisor's daily digest for a moment (or queue and send it with --send).")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p.add_argument("--send", action="store_true", help="send the text and the chart to the supervisor's chat")
    p.add_argument("--html", action="store_true", help="print the text as Telegram gets it (HTML tags), not plain")
    p = add("report", "Write the monthly evaluation report (HTML with charts, and a PDF of it).")
    p.add_argument("--month", required=True, help="the month, e.g. 2026-11")
    p.add_argument("--out", default="reports", help="folder to write into (default: reports)")
    p.add_argument("--now", help="the moment the figures are taken at (default: now)")
    p.add_argument("--send", action="store_true", help="also send the PDF to the media team's chat")
    p = add("deliver", "Send what is due in the outbox to Telegram once.")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p = add("demo", "Run the whole bot offline against fake Instagram and Telegram servers and show what each group sees.")
    p.add_argument("--serve", action="store_true", help="keep running with a local web page showing each chat live")
    p.add_argument("--port", type=int, default=8765, help="port of the demo web page (default 8765)")
    p = add("run", "Run the bot: Telegram, the Instagram pollers and every scheduled job, until SIGTERM.")
    p = add("backup", "Copy the live database to a file safely while the bot runs (SQLite's online backup); "
                      "the copy is readable by its owner only.")
    p.add_argument("--out", required=True, help="the backup file, or a folder to write triage-DATE-TIME.db in")
    p = add("doctor", "Check the live setup: the bot token, each group and the bot's rights there, each Instagram "
                      "token and its permissions, the webhook endpoint; one line per check.")
    p.add_argument("--lang", choices=["en", "id"], default=os.environ.get("TRIAGE_LANG", "en"),
                   help="language of the report: en or id (default: $TRIAGE_LANG or en)")
    p.add_argument("--webhook-url", help="the public webhook URL, e.g. https://HOST/webhooks/instagram "
                                         "(default: $TRIAGE_WEBHOOK_URL); checked only when given")
    p = add("webhook", "Serve Instagram webhooks (comments, DMs): store and triage them, until SIGTERM.")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    p.add_argument("--port", type=int, help="port to listen on (default: $PORT or 8080)")
    p = add("retrain-spam", "Retrain the spam model on the media team's corrections; adopt it only if not worse.")
    p.add_argument("--now", help="the moment to act for (ISO 8601; default: now)")
    p.add_argument("--send", action="store_true", help="also deliver the one-line notice to the media team")
    p = add("export-feedback", "Write the label and unit corrections made in Telegram as training records.")
    p.add_argument("--out", default="feedback.jsonl")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and the Bot API puts the bot token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger().addFilter(_RedactSecrets())
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactSecrets())
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, CommandError) as err:
        print(f"triage {args.command}: {err}", file=sys.stderr)
        return 2
    except StartupError as err:
        print(f"triage {args.command}: cannot start: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`triage tickets | head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout on the way out.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 - the last resort: one line, no secrets, the details with -v
        if verbose:
            import traceback

            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        print(f"triage {args.command}: failed: {redact(f'{type(err).__name__}: {err}')}"
              + ("" if verbose else " (run with -v for the details)"), file=sys.stderr)
        return 1


def _secrets() -> list[str]:
    """Values of the environment that must never be printed: tokens and secrets."""
    return [value for name, value in os.environ.items()
            if value and len(value) >= 6 and any(word in name for word in ("TOKEN", "SECRET", "PASSWORD"))]


def redact(text: str) -> str:
    for secret in _secrets():
        text = text.replace(secret, "[hidden]")
    return text


class _RedactSecrets(logging.Filter):
    """Hides tokens and secrets in log records (a library may put a token in its message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            trace = "".join(traceback.format_exception(*record.exc_info))
            if redact(trace) != trace:
                cleaned += "\n" + redact(trace)
                record.exc_info, record.exc_text = None, None
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
