"""Loopback stand-ins for external APIs, for tests, demos and benchmarks (no internet needed)."""

from etl_platform.devservers.ecb import EcbStandIn
from etl_platform.devservers.fake_store import FakeStoreStandIn
from etl_platform.devservers.hotmart import HotmartStandIn
from etl_platform.devservers.nvd import NvdStandIn

__all__ = ["EcbStandIn", "FakeStoreStandIn", "HotmartStandIn", "NvdStandIn"]
