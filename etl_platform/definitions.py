"""The one code location: every domain's definitions, the shared resources, the executor.

Cross-cutting policy is applied here once, over every asset spec: the owning team. The
environment is bound here once too: each resource field a variable configures gets
`EnvVar(name)` when the variable is set, its default otherwise (`settings.env_var_or`).
"""

import warnings
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dagster import AssetKey, AssetSpec, Definitions, PreviewWarning, in_process_executor

from etl_platform.defs.commerce.resources import (
    DEFAULT_CATEGORY,
    ECB_API_URL,
    ECB_HISTORY_URL,
    STORE_API_URL,
    EcbResource,
    FakeStoreResource,
)
from etl_platform.defs.cve.resources import NVD_API_URL, NvdResource
from etl_platform.defs.sales.resources import SALES_API_URL, SALES_AUTH_URL, HotmartResource
from etl_platform.lib import settings
from etl_platform.lib.freshness import Cadence, freshness_checks, freshness_sensor
from etl_platform.lib.quarantine import QuarantineResource
from etl_platform.lib.storage import JsonIOManagerFactory, ParquetIOManagerFactory, StorageResource
from etl_platform.lib.warehouse import WarehouseResource

with warnings.catch_warnings():
    # The domains declare partitioned asset checks, a preview API that is stable in this pinned
    # release: its warning (one per check, on import) would greet every user of `dagster dev`.
    warnings.simplefilter("ignore", PreviewWarning)
    from etl_platform.defs.commerce import definitions as commerce
    from etl_platform.defs.cve import definitions as cve
    from etl_platform.defs.hr import definitions as hr
    from etl_platform.defs.ops import definitions as ops
    from etl_platform.defs.sales import definitions as sales


def build_resources(**fields: Mapping[str, Any]) -> dict:
    """Resources shared by every domain, bound to the environment as it is now.

    `fields` (resource key -> field values) win over the environment: tests make clients quick.
    """
    env = settings.env_var_or
    storage_url = env("ETL_STORAGE_URL", settings.storage_url())
    bound = {
        "storage": (StorageResource, {"base_url": storage_url}),
        "json_io_manager": (JsonIOManagerFactory, {"base_url": storage_url}),
        "parquet_io_manager": (ParquetIOManagerFactory, {"base_url": storage_url}),
        "warehouse": (WarehouseResource, {"url": env("ETL_WAREHOUSE_URL", settings.warehouse_url())}),
        "quarantine_policy": (QuarantineResource, {}),
        "nvd": (NvdResource, {"api_url": env("NVD_API_URL", NVD_API_URL), "api_key": env("NVD_API_KEY", None)}),
        "ecb": (
            EcbResource,
            {"api_url": env("ECB_API_URL", ECB_API_URL), "history_url": env("ECB_HISTORY_URL", ECB_HISTORY_URL)},
        ),
        "store": (
            FakeStoreResource,
            {
                "api_url": env("STORE_API_URL", STORE_API_URL),
                "user_name": env("STORE_USER_NAME", None),
                "user_email": env("STORE_USER_EMAIL", None),
                "user_password": env("STORE_USER_PASSWORD", None),
                "user_avatar": env("STORE_USER_AVATAR", None),
                "category": env("STORE_CATEGORY", DEFAULT_CATEGORY),
            },
        ),
        "hotmart": (
            HotmartResource,
            {
                "api_url": env("SALES_API_URL", SALES_API_URL),
                "auth_url": env("SALES_AUTH_URL", SALES_AUTH_URL),
                "client_id": env("SALES_CLIENT_ID", None),
                "client_secret": env("SALES_CLIENT_SECRET", None),
                "start_date": env("SALES_START_DATE", None),
            },
        ),
    }
    return {key: resource(**(values | dict(fields.get(key, {})))) for key, (resource, values) in bound.items()}


OWNERS = ["team:data-platform"]


def with_policy(spec: AssetSpec) -> AssetSpec:
    """Owners for every asset (a domain may name its own)."""
    return spec if spec.owners else spec.replace_attributes(owners=OWNERS)


# How often each group's warehouse tables and reports get new data, and the grace a late load gets.
FRESHNESS = {
    # Daily schedules (cve at 03:00 UTC, commerce at 04:00): a day's run may queue or wait on NVD's rate limit.
    "cve": Cadence(every=timedelta(days=1), grace=timedelta(hours=6)),
    "commerce": Cadence(every=timedelta(days=1), grace=timedelta(hours=6)),
    # Every 7 minutes: stale once two runs in a row are missed.
    "sales": Cadence(every=timedelta(minutes=7), grace=timedelta(minutes=8)),
    # HR loads files as they land, on no schedule: a week without a load is worth a look.
    "hr": Cadence(every=timedelta(days=7), grace=timedelta(days=1)),
}
FRESH_LAYERS = ("tables", "reports")
# Written only when a load rejects rows: a quiet table there is good news.
NEVER_STALE = {AssetKey(["hr", "tables", "ingest_rejections"])}


def freshness_policy(keys: list[AssetKey]) -> Definitions:
    """A freshness check on every table and report of a group in FRESHNESS, and the sensor running them."""
    by_cadence: dict[Cadence, list[AssetKey]] = {}
    for key in keys:
        group, layer = key.path[0], key.path[1] if len(key.path) > 1 else None
        if group in FRESHNESS and layer in FRESH_LAYERS and key not in NEVER_STALE:
            by_cadence.setdefault(FRESHNESS[group], []).append(key)
    checks = freshness_checks(by_cadence)
    return Definitions(asset_checks=checks, sensors=[freshness_sensor(checks)])


def merged() -> Definitions:
    # Domain modules are imported, not their Definitions objects: the CLI accepts one per module.
    domains = (commerce.defs, cve.defs, hr.defs, ops.defs, sales.defs)
    return Definitions.merge(
        *domains,
        freshness_policy([key for domain in domains for assets in domain.assets or () for key in assets.keys]),
        Definitions(
            resources=build_resources(),
            # Steps here are small: the multiprocess executor's ~2 s per step would dominate a run.
            executor=in_process_executor,
        ),
    )


def build_definitions() -> Definitions:
    """The code location, its resources bound to the environment as it is now.

    `defs` below is built once, on import; a test that changes variables afterwards builds its own.
    """
    with warnings.catch_warnings():
        # map_asset_specs is a preview API, stable in this pinned release; its warning would greet every user.
        warnings.simplefilter("ignore", PreviewWarning)
        return merged().map_asset_specs(func=with_policy)


defs = build_definitions()
