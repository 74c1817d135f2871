"""The shared diff vocabulary: the kinds, the classification, value comparison, the counts."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd

from etl_platform.lib.changes import (
    LOADABLE,
    QUARANTINED,
    REMOVED,
    SUPERSEDED,
    change_counts,
    change_kinds,
    classify,
    same_values,
    unsent,
)
from etl_platform.lib.schema_types import TEXT, UTC_NS


def test_a_key_the_warehouse_does_not_hold_is_new():
    assert classify(stored=[False], same=[False]).tolist() == ["new"]


def test_a_stored_key_sent_as_stored_is_unchanged():
    assert classify(stored=[True], same=[True]).tolist() == ["unchanged"]


def test_a_stored_key_sent_different_is_changed():
    assert classify(stored=[True], same=[False]).tolist() == ["changed"]


def test_an_incoming_version_older_than_the_stored_one_is_superseded():
    assert classify(stored=[True], same=[False], older=[True]).tolist() == ["superseded"]


def test_no_key_classifies_as_nothing():
    assert classify(stored=[], same=[]).tolist() == []


def test_a_stored_key_no_longer_sent_is_removed():
    assert unsent(still_listed=False) == "removed"


def test_a_stored_key_no_longer_sent_but_still_listed_is_quarantined():
    assert unsent(still_listed=True) == "quarantined"


def test_only_new_and_changed_are_loaded():
    assert LOADABLE == ("new", "changed")


def test_a_domains_kinds_are_new_changed_unchanged_then_its_own():
    assert change_kinds(REMOVED, QUARANTINED) == ["new", "changed", "unchanged", "removed", "quarantined"]


def test_the_counts_name_every_kind_of_the_domain_even_absent_ones():
    change = pd.Series(["new", "new", "unchanged"], dtype=TEXT)

    assert change_counts(change, change_kinds(SUPERSEDED)) == {
        "changes/new": 2,
        "changes/changed": 0,
        "changes/unchanged": 1,
        "changes/superseded": 0,
    }


def test_two_nulls_are_the_same_value():
    stored = pd.Series([None, None], dtype=object)
    incoming = pd.Series([pd.NA, float("nan")], dtype=object)

    assert same_values(stored, incoming).tolist() == [True, True]


def test_a_null_and_a_value_differ():
    assert same_values(pd.Series([None, 5], dtype=object), pd.Series([5, None], dtype="Int64")).tolist() == [
        False,
        False,
    ]


def test_amounts_are_the_same_whatever_their_scale():
    stored = pd.Series([Decimal("49.00")], dtype=object)

    assert same_values(stored, pd.Series([Decimal("49")], dtype=object)).tolist() == [True]


def test_text_is_not_the_same_as_the_number_it_spells():
    assert same_values(pd.Series([1234], dtype=object), pd.Series(["1234"], dtype=TEXT)).tolist() == [False]


def test_a_naive_stored_timestamp_is_read_as_utc():
    stored = pd.Series([datetime(2026, 4, 11, 0, 4, 51)], dtype=object)  # as SQLite returns it
    incoming = pd.Series(pd.to_datetime([1775865891000], unit="ms", utc=True)).astype(UTC_NS)

    assert same_values(stored, incoming).tolist() == [True]


def test_an_aware_stored_timestamp_equals_the_same_instant():
    stored = pd.Series([datetime(2026, 4, 11, 0, 4, 51, tzinfo=timezone.utc)], dtype=object)
    incoming = pd.Series(pd.to_datetime([1775865891000, 1775865892000], unit="ms", utc=True)).astype(UTC_NS)

    assert same_values(pd.concat([stored, stored], ignore_index=True), incoming).tolist() == [True, False]
