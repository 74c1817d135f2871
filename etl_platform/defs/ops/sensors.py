"""The alert router of the `ops` group: one sensor for everything that should reach people."""

import time

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from etl_platform.defs.ops.alerting import route_runs, route_ticks
from etl_platform.lib.alerts import AlertBook

ALERT_ROUTER = "alert_router"


@sensor(
    name=ALERT_ROUTER,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Alerts ETL_ALERT_WEBHOOK_URL when a check (ERROR) or freshness check fails, an asset fails to"
        " materialize, a run fails after its retries, a schedule or sensor tick fails, and when each"
        " passes again; WARN results go into a daily digest. State and outbox live in the cursor."
    ),
)
def alert_router(context: SensorEvaluationContext):
    book = AlertBook.from_json(context.cursor)
    now = time.time()
    runs = route_runs(context.instance, book, now)
    ticks = route_ticks(context.instance, book, now, skip=[ALERT_ROUTER])
    book.roll_digest(now)
    book.forget_stale(now)
    delivered, pending = book.deliver_pending(context.log)
    context.update_cursor(book.to_json())
    return SkipReason(
        f"{runs} run(s) and {ticks} tick(s) read; {delivered} alert(s) delivered, {pending} pending;"
        f" {len(book.failing)} subject(s) failing"
    )
