"""The one code location: every domain's definitions, the shared resources, the executor.

Cross-cutting policy is applied here once, over every asset spec: the owning team. The
environment is bound here once too: each resource field a variable configures gets
`EnvVar(name)` when the variable is set, its default otherwise (`settings.env_var_or`).
"""

import warnings
from collections.abc import Mapping
from typing import Any

from dagster import AssetSpec, Definitions, PreviewWarning, in_process_executor

from etl_platform.defs.commerce import definitions as commerce
from etl_platform.defs.commerce.resources import (
    DEFAULT_CATEGORY,
    ECB_API_URL,
    ECB_HISTORY_URL,
    STORE_API_URL,
    EcbResource,
    FakeStoreResource,
)
from etl_platform.defs.cve import definitions as cve
from etl_platform.defs.cve.resources import NVD_API_URL, NvdResource
from etl_platform.defs.hr import definitions as hr
from etl_platform.defs.ops import definitions as ops
from etl_platform.defs.sales import definitions as sales
from etl_platform.defs.sales.resources import SALES_API_URL, SALES_AUTH_URL, HotmartResource
from etl_platform.lib import settings
from etl_platform.lib.quarantine import QuarantineResource
from etl_platform.lib.storage import JsonIOManagerFactory, ParquetIOManagerFactory, StorageResource
from etl_platform.lib.warehouse import WarehouseResource


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


def merged() -> Definitions:
    # Domain modules are imported, not their Definitions objects: the CLI accepts one per module.
    return Definitions.merge(
        commerce.defs,
        cve.defs,
        hr.defs,
        ops.defs,
        sales.defs,
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
