"""The one code location: every domain's definitions, the shared resources, the executor.

Cross-cutting policy is applied here once, over every asset spec: the owning team.
"""

import warnings

from dagster import AssetSpec, Definitions, PreviewWarning, in_process_executor

from etl_platform.defs.commerce import definitions as commerce
from etl_platform.defs.commerce.resources import EcbResource, FakeStoreResource
from etl_platform.defs.cve import definitions as cve
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.defs.hr import definitions as hr
from etl_platform.defs.ops import definitions as ops
from etl_platform.defs.sales import definitions as sales
from etl_platform.defs.sales.resources import HotmartResource
from etl_platform.lib.quarantine import QuarantineResource
from etl_platform.lib.storage import JsonIOManagerFactory, ParquetIOManagerFactory, StorageResource
from etl_platform.lib.warehouse import WarehouseResource


def build_resources() -> dict:
    """Resources shared by every domain; each reads its environment variables when used."""
    return {
        "storage": StorageResource(),
        "json_io_manager": JsonIOManagerFactory(),
        "parquet_io_manager": ParquetIOManagerFactory(),
        "warehouse": WarehouseResource(),
        "quarantine_policy": QuarantineResource(),
        "nvd": NvdResource(),
        "ecb": EcbResource(),
        "store": FakeStoreResource(),
        "hotmart": HotmartResource(),
    }


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


with warnings.catch_warnings():
    # map_asset_specs is a preview API, stable in this pinned release; its warning would greet every user.
    warnings.simplefilter("ignore", PreviewWarning)
    defs = merged().map_asset_specs(func=with_policy)
