"""The one code location: every domain's definitions, the shared resources, the executor."""

from dagster import Definitions, in_process_executor

from etl_platform.defs.cve.definitions import defs as cve_defs
from etl_platform.defs.cve.resources import NvdResource
from etl_platform.defs.ops.definitions import defs as ops_defs
from etl_platform.lib.storage import JsonIOManagerFactory, ParquetIOManagerFactory, StorageResource
from etl_platform.lib.warehouse import WarehouseResource


def build_resources() -> dict:
    """Resources shared by every domain; each reads its environment variables when used."""
    return {
        "storage": StorageResource(),
        "json_io_manager": JsonIOManagerFactory(),
        "parquet_io_manager": ParquetIOManagerFactory(),
        "warehouse": WarehouseResource(),
        "nvd": NvdResource(),
    }


defs = Definitions.merge(
    cve_defs,
    ops_defs,
    Definitions(
        resources=build_resources(),
        # Steps here are small: the multiprocess executor's ~2 s per step would dominate a run.
        executor=in_process_executor,
    ),
)
