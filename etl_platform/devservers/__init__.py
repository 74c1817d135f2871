"""Loopback stand-ins for external APIs, for tests, demos and benchmarks (no internet needed)."""

from etl_platform.devservers.nvd import NvdStandIn

__all__ = ["NvdStandIn"]
