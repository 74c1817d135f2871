"""What the alert router reads from the instance: finished runs (their check results, failed steps,
failures) and schedule/sensor ticks, fed to an `AlertBook` as failures, recoveries and warnings.

Only APIs that work alike on the SQLite (run-sharded) and Postgres instances: run records by update
time, the events of one run, the ticks of each instigator. A storage-id cursor over all events is
not one of them (SQLite shards the event log by run).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.scheduler.instigation import TickStatus

from etl_platform.lib import settings
from etl_platform.lib.alerts import Alert, AlertBook

TICKS_PER_INSTIGATOR = 50
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
EVENTS = {
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.RUN_FAILURE,
}
PARTITION_TAG = "dagster/partition"
WILL_RETRY_TAG = "dagster/will_retry"
# With run retries on, a failed run gets its will_retry tag just after failing: wait that long for it.
RETRY_TAG_GRACE_SECONDS = 120


def run_link(run_id: str) -> str:
    return f"{settings.ui_base_url()}/runs/{run_id}"


def checks_link(asset_key: AssetKey) -> str:
    return f"{settings.ui_base_url()}/assets/{'/'.join(quote(part) for part in asset_key.path)}?view=checks"


def route_runs(instance: DagsterInstance, book: AlertBook, now: float) -> int:
    """Feed `book` from the runs finished since it last read; returns how many runs were read."""
    since = book.read_since("runs", now)
    records = instance.get_run_records(
        filters=RunsFilter(statuses=FINISHED, updated_after=datetime.fromtimestamp(since, UTC)),
        order_by="update_timestamp",
        ascending=True,
    )
    read = 0
    for record in sorted(records, key=lambda record: record.end_time or record.update_timestamp.timestamp()):
        run = record.dagster_run
        if book.is_read("runs", run.run_id):
            continue
        if _retry_undecided(instance, run, record.end_time or record.update_timestamp.timestamp(), now):
            continue
        _route_run(instance, book, run, now)
        book.mark_read("runs", run.run_id, record.update_timestamp.timestamp())
        read += 1
    return read


def _retry_undecided(instance: DagsterInstance, run: DagsterRun, end_time: float, now: float) -> bool:
    return (
        run.status == DagsterRunStatus.FAILURE
        and instance.run_retries_enabled
        and WILL_RETRY_TAG not in run.tags
        and now - end_time < RETRY_TAG_GRACE_SECONDS
    )


def _route_run(instance: DagsterInstance, book: AlertBook, run: DagsterRun, now: float) -> None:
    # A failed run that will be retried is judged by its last attempt.
    will_retry = run.tags.get(WILL_RETRY_TAG) == "true"
    partition = run.tags.get(PARTITION_TAG)
    # A failed run is alerted through what failed in it (an asset, an ERROR check), else as itself.
    explained = False
    for record in instance.get_records_for_run(run.run_id, of_type=EVENTS).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        event_id = f"{run.run_id}:{record.storage_id}"
        data = event.event_specific_data
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            explained |= _route_check(book, data, event_id, now)
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            key = data.materialization.asset_key
            book.passed(
                f"asset:{key.to_user_string()}|{data.materialization.partition or ''}",
                event_id,
                Alert(
                    title=f"Materialization of {key.to_user_string()} passing again",
                    asset=key.to_user_string(),
                    partition=data.materialization.partition,
                    link=run_link(run.run_id),
                ),
            )
        elif event.event_type == DagsterEventType.STEP_FAILURE and not will_retry:
            reason = _root_cause(data.error) if data is not None and data.error else event.message or ""
            for key in _assets_of_step(instance, run, event.step_key) or []:
                explained = True
                book.failed(
                    f"asset:{key.to_user_string()}|{partition or ''}",
                    event_id,
                    now,
                    Alert(
                        title=f"Run {run.run_id[:8]} of job {run.job_name} failed in {event.step_key},"
                        f" materializing {key.to_user_string()}",
                        reason=reason,
                        asset=key.to_user_string(),
                        partition=partition,
                        link=run_link(run.run_id),
                    ),
                )
        elif event.event_type == DagsterEventType.RUN_FAILURE and not will_retry and not explained:
            # A failure outside asset steps and checks (launch, run monitoring, an op job): the job is the subject.
            book.failed(
                f"run:{run.job_name}|{partition or ''}",
                event_id,
                now,
                Alert(
                    title=f"Run {run.run_id[:8]} of job {run.job_name} failed",
                    reason=_root_cause(data.error) if getattr(data, "error", None) else event.message or "",
                    partition=partition,
                    link=run_link(run.run_id),
                ),
            )
    if run.status == DagsterRunStatus.SUCCESS:
        book.passed(
            f"run:{run.job_name}|{partition or ''}",
            run.run_id,
            Alert(title=f"Job {run.job_name} passing again", partition=partition, link=run_link(run.run_id)),
        )


def _route_check(book: AlertBook, evaluation, event_id: str, now: float) -> bool:
    """Feed one check evaluation; True when it is a failure that alerts."""
    asset = evaluation.asset_key.to_user_string()
    subject = f"check:{asset}:{evaluation.check_name}|{evaluation.partition or ''}"
    # Freshness checks alert whatever severity they were built with: a stale table is never a mere warning.
    alerting = evaluation.severity == AssetCheckSeverity.ERROR or evaluation.check_name.startswith("freshness")
    common = {
        "asset": asset,
        "partition": evaluation.partition,
        "check": evaluation.check_name,
        "link": checks_link(evaluation.asset_key),
    }
    where = asset + (f" [{evaluation.partition}]" if evaluation.partition else "")
    if evaluation.passed:
        book.passed(subject, event_id, Alert(title=f"Check {evaluation.check_name} on {where} passing again", **common))
        return False
    failure = Alert(
        title=f"Check {evaluation.check_name} on {where} failed ({evaluation.severity.value})",
        reason=_check_reason(evaluation),
        **common,
    )
    if alerting:
        book.failed(subject, event_id, now, failure)
    else:
        book.warned(subject, now, failure)
    return alerting


def _check_reason(evaluation) -> str:
    """The check's description and its short metadata values."""
    facts = ", ".join(
        f"{name}={value.value}"
        for name, value in evaluation.metadata.items()
        if isinstance(value.value, (int, float, str)) and len(str(value.value)) <= 80
    )
    return "; ".join(part for part in (evaluation.description, facts) if part)


def _root_cause(error) -> str:
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()


def _assets_of_step(instance: DagsterInstance, run: DagsterRun, step_key: str | None) -> Sequence[AssetKey]:
    """The assets a step materializes, from the run's execution plan."""
    if step_key is None or run.execution_plan_snapshot_id is None:
        return []
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return [
        output.properties.asset_key
        for step in plan.steps
        if step.key == step_key
        for output in step.outputs
        if output.properties is not None and output.properties.asset_key is not None
    ]


def route_ticks(instance: DagsterInstance, book: AlertBook, now: float, skip: Sequence[str] = ()) -> int:
    """Feed `book` from the schedule and sensor ticks since it last read; returns how many were read."""
    if instance.schedule_storage is None:  # an ephemeral instance keeps no ticks
        return 0
    since = book.read_since("ticks", now)
    read = 0
    for state in instance.all_instigator_state():
        if state.instigator_name in skip:
            continue
        ticks = instance.get_ticks(
            state.instigator_origin_id,
            state.selector_id,
            after=since,
            limit=TICKS_PER_INSTIGATOR,
            statuses=[TickStatus.SUCCESS, TickStatus.SKIPPED, TickStatus.FAILURE],
        )
        kind = state.instigator_type.value.lower()
        location = state.origin.repository_origin.code_location_origin.location_name
        repository = state.origin.repository_origin.repository_name
        link = f"{settings.ui_base_url()}/locations/{repository}@{location}/{kind}s/{state.instigator_name}"
        subject = f"tick:{kind}:{state.instigator_name}"
        for tick in sorted(ticks, key=lambda tick: tick.timestamp):
            tick_id = f"{state.selector_id}:{tick.tick_id}"
            if book.is_read("ticks", tick_id):
                continue
            if tick.status == TickStatus.FAILURE:
                book.failed(
                    subject,
                    tick_id,
                    now,
                    Alert(
                        title=f"The {kind} {state.instigator_name} failed its tick",
                        reason=_root_cause(tick.error) if tick.error else "",
                        link=link,
                    ),
                )
            else:
                book.passed(subject, tick_id, Alert(title=f"The {kind} {state.instigator_name} passing again", link=link))
            book.mark_read("ticks", tick_id, tick.timestamp)
            read += 1
    return read
