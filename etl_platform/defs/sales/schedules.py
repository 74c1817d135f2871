"""The `sales_history` job and its 7-minute schedule (the original system's cadence)."""

from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from etl_platform.defs.sales.assets import last_cursor
from etl_platform.defs.sales.fetch import CURSOR_KEY
from etl_platform.defs.sales.keys import CORE_ASSETS
from etl_platform.defs.sales.resources import HotmartResource

JOB_NAME = "sales_history"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]

# The deployed instance's run queue (deploy/dagster.yaml) lets one run with this tag go at a time.
CONCURRENCY_TAG, CONCURRENCY_GROUP = "etl/concurrency_group", "sales"

sales_job = define_asset_job(
    JOB_NAME,
    selection=AssetSelection.assets(*CORE_ASSETS),
    tags={CONCURRENCY_TAG: CONCURRENCY_GROUP},
    description=(
        "Hotmart sales from the cursor (minus the overlap) to now: raw pages, flattened files, typed "
        "layer, upsert into `sale`. The other sales endpoints (group sales_extra) are not part of it."
    ),
)


def queue_serialises_sales(instance: DagsterInstance) -> bool:
    """The instance's run queue holds sales runs to one at a time (the deployed profile)."""
    queue = instance.get_concurrency_config().run_queue_config
    return queue is not None and any(
        limit.get("key") == CONCURRENCY_TAG and limit.get("value") == CONCURRENCY_GROUP and limit.get("limit") == 1
        for limit in queue.tag_concurrency_limits or []
    )


def run_in_flight(instance: DagsterInstance) -> bool:
    """A `sales_history` run is queued or running: the next one would pull the same window."""
    return bool(instance.get_run_records(RunsFilter(job_name=JOB_NAME, statuses=IN_FLIGHT), limit=1))


def next_run(instance: DagsterInstance, hotmart: HotmartResource) -> RunRequest | SkipReason:
    """What the schedule or the sensor asks for now."""
    if not hotmart.has_credentials():
        return SkipReason("SALES_CLIENT_ID / SALES_CLIENT_SECRET are not set")
    # Where the queue serialises sales runs, a queued run starts from the cursor its predecessor left.
    if not queue_serialises_sales(instance) and run_in_flight(instance):
        return SkipReason("a sales_history run is still in flight; it will move the cursor")
    cursor = last_cursor(instance)
    return RunRequest(tags={CURSOR_KEY: str(cursor) if cursor is not None else "first run"})


@schedule(
    name="sales_schedule",
    job=sales_job,
    cron_schedule="*/7 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        "Every 7 minutes: pull Hotmart sales from where the last successful run ended (minus the "
        "overlap) to now. Skips while a run is in flight or when no credentials are set."
    ),
)
def sales_schedule(context: ScheduleEvaluationContext, hotmart: HotmartResource):
    return next_run(context.instance, hotmart)
