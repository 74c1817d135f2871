"""lib/quarantine: which records a batch sets aside, when the batch is refused, and the table that keeps them."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest
import sqlalchemy as sa
from dagster import AssetCheckSeverity, AssetKey
from pandera.typing import Series

from etl_platform.lib import quarantine
from etl_platform.lib.quarantine import Gate, Rejected
from etl_platform.lib.warehouse import engine_for

ASSET = AssetKey(["shop", "clean", "items"])


class Item(pa.DataFrameModel):
    id: Series[int] = pa.Field(gt=0)
    price: Series[float] = pa.Field(ge=0)

    class Config:
        strict = True


def items(*prices: float) -> pd.DataFrame:
    return pd.DataFrame({"id": range(1, len(prices) + 1), "price": list(prices)})


def gated(frame: pd.DataFrame, max_bad_share: float = 0.05) -> tuple[Gate, quarantine.Verdict]:
    gate = Gate(len(frame), max_bad_share)
    gate.check("items", Item, frame, list(range(len(frame))))
    return gate, gate.verdict(lambda record: (str(record + 1), {"position": record}))


def test_a_row_breaking_a_rule_rejects_its_record_with_the_reason():
    gate, verdict = gated(items(*[1.0] * 30, -5.0))

    [rejected] = verdict.rejected
    assert rejected.record_key == "31" and rejected.payload == {"position": 30}
    assert "items.price" in rejected.reasons[0] and "-5.0" in rejected.reasons[0]
    assert not verdict.blocked


def test_the_good_rows_are_kept_and_the_rejected_ones_dropped():
    frame = items(*[1.0] * 30, -5.0)
    gate, _ = gated(frame)

    kept = gate.good(frame, list(range(len(frame))))

    assert list(kept["id"]) == list(range(1, 31))


def test_rows_of_other_tables_reject_the_record_they_come_from():
    gate = Gate(total=3)
    gate.check("items", Item, items(1.0, -1.0), records=[0, 2])
    verdict = gate.verdict(lambda record: (f"#{record}", None))

    assert [r.record_key for r in verdict.rejected] == ["#2"]


@pytest.mark.parametrize(("bad", "blocked"), [(1, False), (2, True)])
def test_more_than_the_allowed_share_of_bad_records_blocks_the_batch(bad, blocked):
    _, verdict = gated(items(*[1.0] * (20 - bad), *[-1.0] * bad), max_bad_share=0.05)

    assert verdict.blocked is blocked


def test_a_structural_failure_blocks_whatever_the_share():
    gate = Gate(total=2)
    gate.check("items", Item, pd.DataFrame({"id": [1, 2]}), records=[0, 1])

    verdict = gate.verdict(lambda record: (str(record), None))

    assert verdict.blocked and "price" in verdict.reason() and "structural" in verdict.reason()


def test_the_check_is_a_warning_when_records_are_quarantined_and_an_error_when_blocked():
    _, some = gated(items(*[1.0] * 30, -5.0))
    _, blocked = gated(items(1.0, -5.0))

    warn = quarantine.gate_check(ASSET, "pandera_schema", some)
    error = quarantine.gate_check(ASSET, "pandera_schema", blocked)

    assert (warn.passed, warn.severity, warn.metadata["quarantined"].value) == (False, AssetCheckSeverity.WARN, 1)
    assert (error.passed, error.severity, error.metadata["quarantined"].value) == (False, AssetCheckSeverity.ERROR, 0)
    assert quarantine.gate_check(ASSET, "pandera_schema", gated(items(1.0))[1]).passed


def keep(connection, partition: str, *rejected: Rejected, run_id: str = "run-1") -> dict:
    return quarantine.keep(
        connection, domain="shop", asset=ASSET, partition=partition, rejected=rejected, run_id=run_id
    )


@pytest.fixture
def warehouse(any_warehouse_url):
    engine = engine_for(any_warehouse_url)
    quarantine.metadata.create_all(engine)
    return engine


def stored(engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(quarantine.quarantine)).mappings()]


def test_a_rejected_record_is_kept_with_its_payload_and_reasons(warehouse):
    with warehouse.begin() as connection:
        counts = keep(connection, "2024-01-01", Rejected("7", {"id": 7, "price": "n/a"}, ["price: not a number"]))

    [row] = stored(warehouse)
    assert counts == {"quarantined_new": 1, "quarantined_again": 0}
    assert (row["domain"], row["asset"], row["partition"], row["record_key"]) == (
        "shop", "shop/clean/items", "2024-01-01", "7"
    )
    assert row["payload"] == {"id": 7, "price": "n/a"} and row["reasons"] == ["price: not a number"]
    assert row["quarantined_at"] is not None and row["replayed_at"] is None


def test_a_record_still_bad_on_a_rerun_is_updated_not_added_again(warehouse):
    with warehouse.begin() as connection:
        keep(connection, "2024-01-01", Rejected("7", {}, ["first reason"]))
        counts = keep(connection, "2024-01-01", Rejected("7", {}, ["second reason"]), run_id="run-2")

    [row] = stored(warehouse)
    assert counts["quarantined_again"] == 1
    assert (row["reasons"], row["run_id"]) == (["second reason"], "run-2")


def test_a_record_loaded_later_is_marked_replayed_and_no_longer_counted(warehouse):
    with warehouse.begin() as connection:
        keep(connection, "2024-01-01", Rejected("7", {}, ["bad"]), Rejected("8", {}, ["bad"]))
        closed = quarantine.mark_replayed(
            connection, domain="shop", asset=ASSET, partition="2024-01-01", loaded_keys=[7, 9]
        )
        still_open = quarantine.open_count(connection, "shop", "2024-01-01")

    assert (closed, still_open) == (1, 1)
    assert {row["record_key"]: row["replayed_at"] is not None for row in stored(warehouse)} == {"7": True, "8": False}


def test_records_of_another_partition_are_left_alone(warehouse):
    with warehouse.begin() as connection:
        keep(connection, "2024-01-01", Rejected("7", {}, ["bad"]))
        closed = quarantine.mark_replayed(
            connection, domain="shop", asset=ASSET, partition="2024-01-02", loaded_keys=["7"]
        )
        partitions = quarantine.open_partitions(connection, "shop")

    assert closed == 0 and partitions == ["2024-01-01"]


def test_counting_before_the_table_exists_finds_nothing(sqlite_url):
    with engine_for(sqlite_url).connect() as connection:
        assert quarantine.open_count(connection, "shop", "2024-01-01") == 0
        assert quarantine.open_partitions(connection, "shop") == []
