"""The sensor alternative to the 7-minute schedule (stopped by default: run one or the other)."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from etl_platform.defs.sales.assets import last_cursor
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.defs.sales.schedules import next_run, sales_job


@sensor(
    name="sales_sensor",
    job=sales_job,
    minimum_interval_seconds=7 * 60,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Alternative to sales_schedule: starts the next sales_history run once the previous one has "
        "ended and 7 minutes have passed, never two at once. Both continue from the same cursor (the "
        "last window loaded into `sale`), so switching between them skips nothing."
    ),
)
def sales_sensor(context: SensorEvaluationContext, hotmart: HotmartResource):
    request = next_run(context.instance, hotmart)
    cursor = last_cursor(context.instance)
    if isinstance(request, RunRequest):
        return SensorResult(run_requests=[request], cursor=str(cursor))
    return SensorResult(skip_reason=request, cursor=context.cursor)
