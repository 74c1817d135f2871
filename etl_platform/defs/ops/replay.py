"""Replay: run the partitions that hold quarantined records again, through the domain's own job.

After a fix (the parser extended, the source corrected), the job `replay_quarantine` finds the
partitions of a domain with open records in `quarantine` and runs the domain's job for each,
one run after another, each a normal run of that job (tagged `etl/replay_of`). The layers
themselves settle each record: one that loads now is marked replayed; one still bad stays
quarantined with the reasons of this run.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from dagster import (
    Config,
    DagsterRunStatus,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    build_reconstructable_job,
    execute_job,
    job,
    op,
)
from pydantic import Field

from etl_platform.lib import quarantine
from etl_platform.lib.warehouse import WarehouseResource

REPLAY_TAG = "etl/replay_of"


class Domain(str, Enum):
    cve = "cve"
    commerce = "commerce"
    sales = "sales"


@dataclass(frozen=True)
class Target:
    """How a domain's partition is run again: which job, with which tags and config."""

    job_name: str
    partitioned: bool

    def run_for(self, partition: str) -> tuple[dict, dict]:
        if self.partitioned:
            return {"dagster/partition": partition}, {}
        # Sales runs are windows, kept as an ISO-8601 interval: pull that window again.
        start, end = partition.split("/")
        window = {"start": datetime.fromisoformat(start).isoformat(), "end": datetime.fromisoformat(end).isoformat()}
        return {}, {"ops": {"sales__raw__sales": {"config": window}}}


TARGETS = {
    Domain.cve: Target("cve_daily", partitioned=True),
    Domain.commerce: Target("commerce_daily", partitioned=True),
    Domain.sales: Target("sales_history", partitioned=False),
}


def location_job(name: str) -> JobDefinition:
    """A job of the code location, by name (what `build_reconstructable_job` rebuilds in a run)."""
    from etl_platform.definitions import defs

    return defs.resolve_job_def(name)


class ReplayConfig(Config):
    domain: Domain = Field(description="whose quarantined records to replay: cve, commerce or sales")


@op(description="Runs the domain's job for every partition holding quarantined records, oldest first.")
def replay_quarantined_records(context: OpExecutionContext, config: ReplayConfig, warehouse: WarehouseResource):
    domain = config.domain.value
    target = TARGETS[config.domain]
    with warehouse.begin() as connection:
        partitions = quarantine.open_partitions(connection, domain)
        before = sum(quarantine.open_count(connection, domain, partition) for partition in partitions)
    if not partitions:
        context.log.info(f"{domain}: nothing is quarantined")
    runs = {}
    for partition in partitions:
        tags, run_config = target.run_for(partition)
        recon = build_reconstructable_job(__name__, location_job.__name__, reconstructable_args=(target.job_name,))
        with execute_job(
            recon, instance=context.instance, tags={**tags, REPLAY_TAG: context.run_id}, run_config=run_config
        ) as result:
            runs[partition] = (result.run_id, result.dagster_run.status)
        context.log.info(f"{domain} {partition}: run {result.run_id} {result.dagster_run.status.value}")
    with warehouse.begin() as connection:
        after = sum(quarantine.open_count(connection, domain, partition) for partition in partitions)
    failed = [partition for partition, (_, status) in runs.items() if status != DagsterRunStatus.SUCCESS]
    metadata = {
        "partitions": len(partitions),
        "quarantined_before": before,
        "still_quarantined": after,
        "replayed": before - after,
        "runs": MetadataValue.md("\n".join(f"- {p}: {run} {status.value}" for p, (run, status) in runs.items()) or "none"),
    }
    if failed:
        raise Failure(description=f"{domain}: the runs of {', '.join(failed)} failed", metadata=metadata)
    return Output(None, metadata=metadata)


@job(
    name="replay_quarantine",
    description=(
        "After a fix, run again every partition of a domain that holds quarantined records (config: domain). "
        "Records that load are marked replayed; those still bad stay quarantined with their new reasons."
    ),
)
def replay_quarantine_job():
    replay_quarantined_records()
