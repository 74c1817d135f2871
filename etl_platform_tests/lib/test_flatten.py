"""The generic flattening step, on the recorded Hotmart records (docs example and live record)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from etl_platform.lib.flatten import flatten, to_json_text

SAMPLES = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "hotmart_sales"
KEY = ("purchase_transaction",)


def _live(tool: str) -> dict:
    capture = json.loads((SAMPLES / "hotmart-mcp__test-results_live_capture__PII_REDACTED.json").read_text("utf-8"))
    return next(r["sample"] for r in capture["results"] if r["tool"] == tool)


def _docs(name: str) -> list[dict]:
    return json.loads((SAMPLES / f"docs_example__{name}.json").read_text("utf-8"))["items"]


DOCS_SALE = _docs("sales_history")[0]
LIVE_SALE = _live("get_sales_history")
SALES = [DOCS_SALE, LIVE_SALE]


def shuffled(value, rng: random.Random):
    """The same value with every object's keys in a random order (recursively)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def test_path_keys_and_types_from_both_records():
    root = flatten(SALES, key=KEY, name="sale")
    assert root.name == "sale" and root.columns[0] == "purchase_transaction"
    docs, live = root.rows
    assert docs["purchase_price_value"] == 235.76 and live["purchase_price_value"] == 49  # float vs int kept
    assert docs["purchase_hotmart_fee_currency_code"] == "EUR"
    assert live["purchase_tracking_source_sck"].endswith("ADS2_Estático_OCC_04_26")
    # keys present in only one record: a column for all, None where missing
    assert live["purchase_recurrency_number"] is None and docs["purchase_recurrency_number"] == 2
    assert docs["purchase_hotmart_fee_percentage"] is None and live["purchase_hotmart_fee_percentage"] == 5.9
    assert docs["buyer_email"] == "ian@teste.com"
    assert all(set(row) == set(root.columns) for row in root.rows)
    assert list(root.columns[1:]) == sorted(root.columns[1:])
    assert not any(isinstance(v, (dict, list)) for row in root.rows for v in row.values())


def test_key_order_independence():
    expected = flatten(SALES, key=KEY)
    for seed in range(5):
        rng = random.Random(seed)
        again = flatten([shuffled(r, rng) for r in SALES], key=KEY)
        assert again == expected
    # record order changes row order only, not the columns
    reversed_ = flatten(list(reversed(SALES)), key=KEY)
    assert reversed_.columns == expected.columns
    assert reversed_.rows == list(reversed(expected.rows))


def test_lists_of_scalars_as_json():
    record = {"id": 1, "tags": ["a", "b"], "n": {"ints": [3, 1]}, "empty": [], "mixed": [{"b": 1, "a": 2}, 3]}
    row = flatten([record], key=["id"]).rows[0]
    assert row["tags"] == '["a","b"]' and json.loads(row["n_ints"]) == [3, 1]
    assert row["empty"] == "[]"
    assert row["mixed"] == '[{"a":2,"b":1},3]'  # JSON with sorted keys


def test_lists_of_objects_kept_as_json():
    items = _docs("sales_commissions")
    text = flatten(items, key=["transaction"]).rows[0]["commissions"]
    assert json.loads(text) == items[0]["commissions"]
    assert text == to_json_text(shuffled(items[0]["commissions"], random.Random(1)))


def test_empty_input_gives_the_key_columns_and_no_rows():
    table = flatten([], key=KEY, name="sale")
    assert table.columns == KEY and table.rows == [] and table.to_frame().empty
    assert flatten([]).columns == ()


def test_two_paths_flattening_to_one_column_are_refused():
    with pytest.raises(ValueError, match="same column"):
        flatten([{"a_b": 1, "a": {"b": 2}}])


def test_a_record_that_is_not_an_object_is_refused():
    with pytest.raises(TypeError, match="record 1 is list"):
        flatten([{"a": 1}, [1]])


def test_storable_frame_turns_mixed_columns_into_text():
    records = [{"id": 1, "v": 49, "w": "a", "f": True}, {"id": 2, "v": 235.76, "w": 7, "f": None}]
    frame = flatten(records, key=["id"]).to_storable_frame()
    assert frame["v"].tolist() == [49, 235.76]  # numbers stay numbers
    assert frame["w"].tolist() == ["a", "7"]  # text and a number: text
    assert frame["f"].tolist() == [True, None]
    import pyarrow as pa

    pa.Table.from_pandas(frame)  # one type per column
