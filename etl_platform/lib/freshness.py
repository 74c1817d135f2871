"""Freshness: how old a table may get before its check fails, from the cadence it is loaded on.

A `Cadence` says how often new data is expected and how long a late load is forgiven; its
`bound` (cadence + grace) is the oldest a table's last materialization may be, whichever
partition it loaded. Dagster's OSS freshness checks evaluate it, with severity ERROR so the
alert router sends a stale table; `freshness_sensor` runs them between loads.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dagster import (
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    DefaultSensorStatus,
    SensorDefinition,
    SupersessionWarning,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
)

FRESHNESS_SENSOR = "freshness_checks_sensor"
# A stale table is found within this long of the bound passing.
SENSOR_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class Cadence:
    """New data expected every `every`; `grace` forgives a late or slow load."""

    every: timedelta
    grace: timedelta

    @property
    def bound(self) -> timedelta:
        return self.every + self.grace


def freshness_checks(keys_by_cadence: Mapping[Cadence, Iterable[AssetKey]]) -> list[AssetChecksDefinition]:
    """One `freshness_check` per asset, failing (ERROR) once its last update is older than its cadence's bound."""
    with warnings.catch_warnings():
        # FreshnessPolicy supersedes these; checks give the results the alert router already reads.
        warnings.simplefilter("ignore", SupersessionWarning)
        return [
            check
            for cadence, keys in keys_by_cadence.items()
            if keys
            for check in build_last_update_freshness_checks(
                assets=sorted(keys, key=AssetKey.to_user_string),
                lower_bound_delta=cadence.bound,
                severity=AssetCheckSeverity.ERROR,
            )
        ]


def freshness_sensor(checks: list[AssetChecksDefinition]) -> SensorDefinition:
    """Runs each freshness check when it could have turned stale (not while it is already failing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=FRESHNESS_SENSOR,
            minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
            default_status=DefaultSensorStatus.RUNNING,
        )
