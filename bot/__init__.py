"""Triage bot for Indonesian ministries' Instagram comments and DMs."""

import os

# python-telegram-bot reports time periods (RetryAfter.retry_after) as timedelta
# only with this switch; without it each access warns that int is deprecated.
os.environ.setdefault("PTB_TIMEDELTA", "true")
