"""Alerts: a Slack-compatible JSON POST to `ETL_ALERT_WEBHOOK_URL`, or a log line when unset."""

from __future__ import annotations

import logging

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from etl_platform.lib import settings

log = logging.getLogger(__name__)


@retry(
    retry=retry_if_exception_type(requests.RequestException),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=1, max=10),
    reraise=True,
)
def _post(url: str, text: str) -> None:
    response = requests.post(url, json={"text": text}, timeout=10)
    response.raise_for_status()


def send_alert(text: str, logger: logging.Logger | logging.LoggerAdapter | None = None) -> bool:
    """Send `text`; True when a webhook took it. The webhook URL itself is never logged."""
    logger = logger or log
    url = settings.alert_webhook_url()
    logger.warning(f"ALERT: {text}")
    if not url:
        return False
    try:
        _post(url, text)
    except requests.RequestException as error:
        logger.error(f"the alert webhook refused the alert: {type(error).__name__}")
        return False
    return True
