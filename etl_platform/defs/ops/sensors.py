"""Alerting sensors of the `ops` group: failed runs and failed asset checks reach people."""

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    EventRecordsFilter,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from etl_platform.lib.alerts import send_alert

MAX_EVENTS_PER_TICK = 100


@run_failure_sensor(
    name="alert_on_run_failure",
    default_status=DefaultSensorStatus.RUNNING,
    description="POSTs an alert to ETL_ALERT_WEBHOOK_URL for every failed run of this code location.",
)
def alert_on_run_failure(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    steps = ", ".join(event.step_key for event in context.get_step_failure_events() if event.step_key)
    send_alert(
        f"Run {run.run_id[:8]} of job {run.job_name}"
        + (f" (partition {partition})" if partition else "")
        + f" failed{f' in {steps}' if steps else ''}: {context.failure_event.message}",
        context.log,
    )


@sensor(
    name="alert_on_failed_check",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="POSTs an alert to ETL_ALERT_WEBHOOK_URL for every asset check evaluation that failed.",
)
def alert_on_failed_check(context: SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    records = context.instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=MAX_EVENTS_PER_TICK,
        ascending=True,
    )
    if not records:
        return SkipReason("no new asset check evaluations")
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    failed = [evaluation for evaluation in evaluations if not evaluation.passed]
    for evaluation in failed:
        send_alert(check_failure_text(evaluation), context.log)
    context.update_cursor(str(records[-1].storage_id))
    return SkipReason(f"{len(records)} evaluation(s) seen, {len(failed)} failed and alerted")


def check_failure_text(evaluation) -> str:
    """One line naming the check, asset, partition and the short metadata values."""
    where = f"{evaluation.asset_key.to_user_string()}" + (f" [{evaluation.partition}]" if evaluation.partition else "")
    facts = ", ".join(
        f"{name}={value.value}"
        for name, value in evaluation.metadata.items()
        if isinstance(value.value, (int, float, str)) and len(str(value.value)) <= 80
    )
    text = f"Check {evaluation.check_name} on {where} failed ({evaluation.severity.value})"
    return text + (f": {facts}" if facts else "")
