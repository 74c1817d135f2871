"""Alerts: Slack-compatible JSON POSTed to `ETL_ALERT_WEBHOOK_URL` (a log line when unset).

`AlertBook` is the alert router's memory, kept as JSON in the instance (the sensor's cursor):
which subjects (a check, an asset or job, a schedule/sensor on one partition) are failing since
when and how often, the outbox of messages not yet taken by the webhook, the runs and ticks
already read and the day's WARN digest. A message is sent when a subject changes state, never on
a repeat, and leaves the outbox only once the webhook took it, so a restart neither loses nor
repeats one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from etl_platform.lib import settings

log = logging.getLogger(__name__)

# Runs and ticks are re-read this far back (clock skew, late status updates); ids dedupe them.
OVERLAP_SECONDS = 600
# Messages enqueued lately, by id: an event read twice is enqueued once.
REMEMBERED_IDS = 300
# A failing subject not seen again for this long is forgotten (a partition nobody reruns).
FORGET_AFTER_SECONDS = 30 * 86400


def _retryable(error: BaseException) -> bool:
    if isinstance(error, requests.HTTPError):
        return error.response is not None and error.response.status_code >= 500
    return isinstance(error, requests.RequestException)


@retry(
    retry=retry_if_exception(_retryable),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.5, max=5),
    reraise=True,
)
def _post(url: str, body: dict[str, Any]) -> None:
    response = requests.post(url, json=body, timeout=10)
    response.raise_for_status()


def deliver(body: dict[str, Any], logger: logging.Logger | logging.LoggerAdapter | None = None) -> bool:
    """POST `body`, retrying connection errors and 5xx with backoff; True when a webhook took it.

    Without a webhook the message is logged and counts as delivered. The URL itself is never logged.
    """
    logger = logger or log
    url = settings.alert_webhook_url()
    logger.warning(f"ALERT: {body.get('text', '')}")
    if not url:
        return True
    try:
        _post(url, body)
    except requests.RequestException as error:
        logger.error(f"the alert webhook refused the alert: {type(error).__name__}")
        return False
    return True


def send_alert(text: str, logger: logging.Logger | logging.LoggerAdapter | None = None) -> bool:
    """Send `text` now, outside the router; True when a webhook took it."""
    return deliver({"text": text}, logger) and bool(settings.alert_webhook_url())


@dataclass(frozen=True)
class Alert:
    """One message about one subject: what, where and a link into the UI."""

    title: str
    reason: str = ""
    asset: str | None = None
    partition: str | None = None
    check: str | None = None
    link: str | None = None

    def body(self) -> dict[str, Any]:
        """Slack-compatible JSON: `text` for plain webhooks, `blocks` for Slack."""
        fields = [
            (name, value)
            for name, value in (
                ("asset", self.asset),
                ("partition", self.partition),
                ("check", self.check),
                ("reason", self.reason),
            )
            if value
        ]
        text = self.title + (f": {self.reason}" if self.reason else "") + (f" <{self.link}>" if self.link else "")
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{self.title}*"}}]
        if fields:
            blocks.append(
                {
                    "type": "section",
                    "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value[:1900]}"} for name, value in fields],
                }
            )
        if self.link:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{self.link}|open in Dagster>"}]})
        body: dict[str, Any] = {"text": text, "blocks": blocks}
        body.update({name: value for name, value in fields})
        if self.link:
            body["link"] = self.link
        return body


class AlertBook:
    """The router's state, serialised to and from JSON."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.failing: dict[str, dict[str, Any]] = state.get("failing", {})
        self.outbox: list[dict[str, Any]] = state.get("outbox", [])
        self.enqueued: list[str] = state.get("enqueued", [])
        self.seen: dict[str, dict[str, float]] = state.get("seen", {})
        self.digest: dict[str, Any] = state.get("digest", {"day": None, "items": {}})

    @classmethod
    def from_json(cls, text: str | None) -> AlertBook:
        return cls(json.loads(text) if text else None)

    def to_json(self) -> str:
        return json.dumps(
            {
                "failing": self.failing,
                "outbox": self.outbox,
                "enqueued": self.enqueued,
                "seen": self.seen,
                "digest": self.digest,
            },
            sort_keys=True,
        )

    # What was read already: runs and ticks, by kind, with the time they were last updated.
    def read_since(self, kind: str, now: float) -> float:
        """Where to start reading `kind` again: the newest one read (at first: now), less the overlap.

        A router switched on later does not alert the instance's history.
        """
        times = self.seen.get(kind)
        return (max(times.values()) if times else now) - OVERLAP_SECONDS

    def is_read(self, kind: str, item_id: str) -> bool:
        return item_id in self.seen.get(kind, {})

    def mark_read(self, kind: str, item_id: str, updated: float) -> None:
        times = self.seen.setdefault(kind, {})
        times[item_id] = updated
        newest = max(times.values())
        for old in [key for key, value in times.items() if value < newest - 2 * OVERLAP_SECONDS]:
            del times[old]

    # State changes.
    def failed(self, subject: str, event_id: str, now: float, alert: Alert) -> bool:
        """A failure of `subject`: an alert when it was passing, else only its repeat counter. True: alerted."""
        known = self.failing.get(subject)
        if known is not None:
            if event_id not in known.get("events", []):
                known["repeats"] += 1
                known["last_event"] = event_id
                known["events"] = (known.get("events", []) + [event_id])[-20:]
            known["seen"] = now
            return False
        self.failing[subject] = {"since": now, "repeats": 0, "last_event": event_id, "events": [event_id], "seen": now}
        self._enqueue(f"{subject}@{event_id}", alert)
        return True

    def passed(self, subject: str, event_id: str, alert: Alert) -> bool:
        """A success of `subject`: one recovery message when it was failing. True: a recovery."""
        known = self.failing.pop(subject, None)
        if known is None:
            return False
        since = datetime.fromtimestamp(known["since"], UTC).strftime("%Y-%m-%d %H:%M UTC")
        repeats = known["repeats"]
        reason = f"failing since {since}" + (f", {repeats} repeat(s)" if repeats else "")
        self._enqueue(f"{subject}@{event_id}", replace(alert, reason=reason))
        return True

    def warned(self, item: str, now: float, alert: Alert) -> None:
        """A WARN result: counted into today's digest, no message of its own."""
        self.roll_digest(now)
        items = self.digest["items"]
        entry = items.setdefault(item, {"title": alert.title, "reason": alert.reason, "link": alert.link, "count": 0})
        entry["count"] += 1
        entry["reason"] = alert.reason

    def roll_digest(self, now: float) -> None:
        """When the day (UTC) has turned, the last day's WARN results become one digest message."""
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        day, items = self.digest.get("day"), self.digest.get("items", {})
        if day != today:
            if day and items:
                lines = [
                    f"• {entry['title']}"
                    + (f" ×{entry['count']}" if entry["count"] > 1 else "")
                    + (f": {entry['reason'][:200]}" if entry["reason"] else "")
                    + (f" <{entry['link']}>" if entry["link"] else "")
                    for entry in items.values()
                ]
                self._enqueue(
                    f"digest@{day}",
                    Alert(title=f"Warnings of {day}: {len(items)} check(s)", reason="\n".join(lines)),
                )
            self.digest = {"day": today, "items": {}}

    def forget_stale(self, now: float) -> None:
        for subject in [key for key, value in self.failing.items() if value["seen"] < now - FORGET_AFTER_SECONDS]:
            del self.failing[subject]

    def _enqueue(self, message_id: str, alert: Alert) -> None:
        if message_id in self.enqueued:
            return
        self.enqueued = (self.enqueued + [message_id])[-REMEMBERED_IDS:]
        self.outbox.append({"id": message_id, "body": alert.body()})

    def deliver_pending(self, logger: logging.Logger | logging.LoggerAdapter | None = None) -> tuple[int, int]:
        """POST the outbox in order, stopping at the first refusal (it stays for the next tick).

        Returns (delivered, still pending).
        """
        delivered = 0
        while self.outbox:
            if not deliver(self.outbox[0]["body"], logger):
                break
            self.outbox.pop(0)
            delivered += 1
        return delivered, len(self.outbox)
