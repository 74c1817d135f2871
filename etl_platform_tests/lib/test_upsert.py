"""The generic merge, on real Postgres (COPY path) and SQLite (batched inserts)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from etl_platform.lib import bulk_load, merge_plan, upsert
from etl_platform.lib.merge_plan import MergePlan, plan_merge
from etl_platform.lib.upsert import MergeError, merge
from etl_platform.lib.warehouse import dispose_engines, engine_for
from etl_platform_tests.conftest import PG_ADMIN_URL

metadata = sa.MetaData()
UTC_TIMESTAMP = sa.DateTime(timezone=True)

item = sa.Table(
    "item",
    metadata,
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("item_key", sa.BigInteger, unique=True, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("price", sa.Numeric(12, 4)),
    sa.Column("modified", UTC_TIMESTAMP, nullable=False),
    info={"version_column": "modified"},
)
item_tag = sa.Table(  # a child, linked the way etl_platform/defs/cve/tables.py links its children
    "item_tag",
    metadata,
    sa.Column("item_key", sa.BigInteger, nullable=False, index=True),
    sa.Column("tag", sa.Text, nullable=False),
    info={"parent": "item", "parent_key": ("item_key",)},
)
setting = sa.Table(
    "setting",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
)
sample = sa.Table(
    "sample",
    metadata,
    sa.Column("sample_id", sa.Integer, primary_key=True),
    sa.Column("label", sa.Text),
    sa.Column("taken", UTC_TIMESTAMP),
    sa.Column("amount", sa.Numeric(20, 6)),
    sa.Column("ratio", sa.Numeric(5, 3)),
    sa.Column("flag", sa.Boolean),
    sa.Column("count", sa.BigInteger),
)
daily = sa.Table(
    "daily",
    metadata,
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("code", sa.Integer, primary_key=True),
    sa.Column("note", sa.Text),
)

daily_mark = sa.Table(  # a child linked on both columns of its parent's key
    "daily_mark",
    metadata,
    sa.Column("day", sa.Text, nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("mark", sa.Text, nullable=False),
    info={"parent": "daily", "parent_key": ("day", "code")},
)

V1 = pd.Timestamp("2024-01-01T10:00:00Z")
V2 = pd.Timestamp("2024-02-01T10:00:00Z")
V3 = pd.Timestamp("2024-03-01T10:00:00Z")


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """One Postgres database for this module (creating one per test would cost ~0.7 s each);
    every test gets freshly created tables in it. Same server and settings as `postgres_url`."""
    name = f"etl_test_upsert_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    dispose_engines()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# The paths a merge can take (`etl_platform.lib.merge_plan`), each forced with `merge(..., plan=path)`:
# the portable one on SQLite, the others on Postgres.
POSTGRES_PATHS = ["staged", "direct", "rebuild"]
every_postgres_path = pytest.mark.parametrize("path", POSTGRES_PATHS)


@pytest.fixture
def postgres(module_postgres_url) -> sa.Engine:
    """Postgres, with the tables of this module freshly created."""
    engine = engine_for(module_postgres_url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return engine


@pytest.fixture
def sqlite(sqlite_url) -> sa.Engine:
    engine = engine_for(sqlite_url)
    metadata.create_all(engine)
    return engine


@pytest.fixture(params=["portable", *POSTGRES_PATHS])
def path(request) -> str:
    """Each test using it runs once per path, forced on every merge it makes."""
    return request.param


@pytest.fixture
def engine(path, request) -> sa.Engine:
    """Where `path` runs: SQLite for the portable path (batched inserts), Postgres for the others."""
    return request.getfixturevalue("sqlite" if path == "portable" else "postgres")


def items(*rows: tuple) -> pd.DataFrame:
    """Rows of `item` as (item_id, item_key, name, modified)."""
    frame = pd.DataFrame(rows, columns=["item_id", "item_key", "name", "modified"])
    frame["item_key"] = frame["item_key"].astype("Int64")
    frame["modified"] = pd.to_datetime(frame["modified"], utc=True)
    return frame


def tags(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_key", "tag"])
    frame["item_key"] = frame["item_key"].astype("Int64")
    return frame


def run_merge(engine: sa.Engine, table: sa.Table, frame: pd.DataFrame, children=None, plan=None):
    """One merge in a transaction of its own; `plan` as `merge` takes it (a path named: forced)."""
    with engine.begin() as connection:
        return merge(connection, table, frame, children, plan=plan)


def stored_items(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(item.c.item_id, item.c.item_key, item.c.name, item.c.modified).order_by(item.c.item_id)
        ).all()
    return [(i, k, n, _utc(m)) for i, k, n, m in rows]


def stored_tags(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as connection:
        return sorted(tuple(r) for r in connection.execute(sa.select(item_tag.c.item_key, item_tag.c.tag)).all())


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC); Postgres aware ones in the session zone.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def counts(result) -> tuple[int, int, int]:
    return result.inserted, result.updated, result.unchanged


# --------------------------------------------------------------------------- inserts and idempotence


def test_new_rows_are_inserted(engine, path):
    result = run_merge(engine, item, items(("A", 1, "alpha", V1), ("B", 2, "beta", V1)), plan=path)

    assert counts(result) == (2, 0, 0)
    assert result.staged == 2
    assert stored_items(engine) == [("A", 1, "alpha", V1), ("B", 2, "beta", V1)]


def test_merging_the_same_rows_again_changes_nothing(engine, path):
    frame = items(("A", 1, "alpha", V1), ("B", 2, "beta", V1))
    children = {item_tag: tags((1, "x"), (2, "y"))}
    run_merge(engine, item, frame, children, plan=path)

    result = run_merge(engine, item, frame, children, plan=path)

    assert counts(result) == (0, 0, 2)
    assert result.children == {"item_tag": 0}
    assert stored_items(engine) == [("A", 1, "alpha", V1), ("B", 2, "beta", V1)]
    assert stored_tags(engine) == [(1, "x"), (2, "y")]


def test_an_empty_frame_merges_nothing(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1)), plan=path)

    result = run_merge(engine, item, items(), plan=path)

    assert counts(result) == (0, 0, 0)
    assert stored_items(engine) == [("A", 1, "alpha", V1)]


def test_merge_result_metadata_names_the_tables(engine, path):
    children = {item_tag: tags((1, "x"), (1, "y"))}
    result = run_merge(engine, item, items(("A", 1, "alpha", V1)), children, plan=path)

    assert result.as_metadata() == {
        "item/staged": 1,
        "item/inserted": 1,
        "item/updated": 0,
        "item/unchanged_or_older": 0,
        "item_tag/rows_replaced": 2,
    }


# --------------------------------------------------------------------------- versions


def test_a_newer_version_updates_the_row(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1), ("B", 2, "beta", V1)), plan=path)

    result = run_merge(engine, item, items(("A", 1, "alpha v2", V2), ("B", 2, "beta", V1)), plan=path)

    assert counts(result) == (0, 1, 1)
    assert stored_items(engine) == [("A", 1, "alpha v2", V2), ("B", 2, "beta", V1)]


def test_an_older_version_never_overwrites_a_newer_one(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha v2", V2)), {item_tag: tags((1, "new"))}, plan=path)

    result = run_merge(engine, item, items(("A", 1, "alpha v1", V1)), {item_tag: tags((1, "old"))}, plan=path)

    assert counts(result) == (0, 0, 1)
    assert stored_items(engine) == [("A", 1, "alpha v2", V2)]
    assert stored_tags(engine) == [(1, "new")]


def test_the_same_version_with_different_content_is_taken(engine, path):
    run_merge(engine, item, items(("A", 1, "first", V1)), plan=path)

    result = run_merge(engine, item, items(("A", 1, "corrected", V1)), plan=path)

    assert counts(result) == (0, 1, 0)
    assert stored_items(engine) == [("A", 1, "corrected", V1)]


def test_duplicate_keys_in_one_batch_keep_the_newest(engine, path):
    frame = items(("A", 1, "middle", V2), ("A", 1, "newest", V3), ("A", 1, "oldest", V1), ("B", 2, "beta", V1))

    result = run_merge(engine, item, frame, plan=path)

    assert (result.staged, result.duplicates_dropped) == (2, 2)
    assert counts(result) == (2, 0, 0)
    assert stored_items(engine) == [("A", 1, "newest", V3), ("B", 2, "beta", V1)]


def test_a_table_without_a_version_column_updates_on_content_change(engine, path):
    run_merge(engine, setting, pd.DataFrame({"name": ["a", "b"], "value": ["1", "1"]}), plan=path)

    changed = run_merge(engine, setting, pd.DataFrame({"name": ["a", "b"], "value": ["2", "1"]}), plan=path)
    again = run_merge(engine, setting, pd.DataFrame({"name": ["a", "b"], "value": ["2", "1"]}), plan=path)

    assert counts(changed) == (0, 1, 1)
    assert counts(again) == (0, 0, 2)
    with engine.connect() as connection:
        assert connection.execute(sa.select(setting).order_by(setting.c.name)).all() == [("a", "2"), ("b", "1")]


def test_a_change_to_null_is_a_change(engine, path):
    run_merge(engine, setting, pd.DataFrame({"name": ["a"], "value": ["1"]}), plan=path)

    result = run_merge(engine, setting, pd.DataFrame({"name": ["a"], "value": [None]}), plan=path)

    assert counts(result) == (0, 1, 0)
    with engine.connect() as connection:
        assert connection.execute(sa.select(setting.c.value)).scalar_one() is None


def test_without_a_version_column_duplicate_keys_keep_the_last_row(engine, path):
    result = run_merge(engine, setting, pd.DataFrame({"name": ["a", "a"], "value": ["first", "last"]}), plan=path)

    assert result.duplicates_dropped == 1
    with engine.connect() as connection:
        assert connection.execute(sa.select(setting.c.value)).scalar_one() == "last"


# --------------------------------------------------------------------------- children


def test_new_parents_get_their_children(engine, path):
    result = run_merge(
        engine, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"), (1, "y"))}, plan=path
    )

    assert result.children == {"item_tag": 2}
    assert stored_tags(engine) == [(1, "x"), (1, "y")]


def test_a_changed_parents_children_are_replaced_not_duplicated(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"), (1, "y"))}, plan=path)

    children = {item_tag: tags((1, "y"), (1, "z"))}
    result = run_merge(engine, item, items(("A", 1, "alpha", V2)), children, plan=path)

    assert result.children == {"item_tag": 2}
    assert stored_tags(engine) == [(1, "y"), (1, "z")]


def test_an_unchanged_parents_children_are_untouched(engine, path):
    run_merge(
        engine,
        item,
        items(("A", 1, "alpha", V1), ("B", 2, "beta", V1)),
        {item_tag: tags((1, "a1"), (2, "b1"))},
        plan=path,
    )

    result = run_merge(
        engine,
        item,
        items(("A", 1, "alpha", V2), ("B", 2, "beta", V1)),
        {item_tag: tags((1, "a2"), (2, "b2"))},
        plan=path,
    )

    assert counts(result) == (0, 1, 1)
    assert result.children == {"item_tag": 1}
    assert stored_tags(engine) == [(1, "a2"), (2, "b1")]


def test_a_changed_parent_without_children_in_the_batch_loses_its_old_children(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"))}, plan=path)

    run_merge(engine, item, items(("A", 1, "alpha", V2)), {item_tag: tags()}, plan=path)

    assert stored_tags(engine) == []


def test_children_of_parents_not_in_the_batch_are_not_inserted(engine, path):
    children = {item_tag: tags((1, "x"), (99, "orphan"))}
    run_merge(engine, item, items(("A", 1, "alpha", V1)), children, plan=path)

    assert stored_tags(engine) == [(1, "x")]


def test_a_child_table_that_does_not_declare_the_parent_is_refused(engine, path):
    with pytest.raises(MergeError, match="table setting does not declare item as its parent"):
        run_merge(engine, item, items(("A", 1, "alpha", V1)), {setting: pd.DataFrame({"name": ["x"]})}, plan=path)


# --------------------------------------------------------------------------- refusals and transactions


def test_an_unknown_column_raises_merge_error(engine, path):
    frame = items(("A", 1, "alpha", V1)).assign(colour="red")

    with pytest.raises(MergeError, match=r"\['colour'\] are not in table item"):
        run_merge(engine, item, frame, plan=path)


def test_an_unknown_child_column_raises_merge_error(engine, path):
    children = {item_tag: tags((1, "x")).assign(weight=1)}
    with pytest.raises(MergeError, match=r"\['weight'\] are not in table item_tag"):
        run_merge(engine, item, items(("A", 1, "alpha", V1)), children, plan=path)
    assert stored_items(engine) == []


def test_a_missing_key_column_raises_merge_error(engine, path):
    frame = items(("A", 1, "alpha", V1)).drop(columns=["item_id"])

    with pytest.raises(MergeError, match=r"key columns \['item_id'\]"):
        run_merge(engine, item, frame, plan=path)


def test_an_error_in_the_callers_transaction_rolls_the_merge_back(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"))}, plan=path)

    with pytest.raises(RuntimeError, match="later step failed"):
        with engine.begin() as connection:
            frame = items(("A", 1, "alpha v2", V2), ("B", 2, "beta", V2))
            merge(connection, item, frame, {item_tag: tags((1, "y"))}, plan=path)
            raise RuntimeError("later step failed")

    assert stored_items(engine) == [("A", 1, "alpha", V1)]
    assert stored_tags(engine) == [(1, "x")]


def test_a_failing_child_insert_rolls_back_the_parent_update(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"))}, plan=path)

    with pytest.raises(sa.exc.IntegrityError):
        children = {item_tag: tags((1, None))}  # tag NOT NULL
        run_merge(engine, item, items(("A", 1, "alpha v2", V2)), children, plan=path)

    assert stored_items(engine) == [("A", 1, "alpha", V1)]
    assert stored_tags(engine) == [(1, "x")]


def test_the_connection_is_usable_for_a_second_merge_in_one_transaction(engine, path):
    with engine.begin() as connection:
        merge(connection, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"))}, plan=path)
        result = merge(connection, item, items(("B", 2, "beta", V1)), {item_tag: tags((2, "y"))}, plan=path)

    assert counts(result) == (1, 0, 0)
    assert stored_tags(engine) == [(1, "x"), (2, "y")]


# --------------------------------------------------------------------------- values through the Postgres COPY path


@every_postgres_path
def test_nulls_and_empty_strings_stay_distinct_through_copy(postgres, path, copy_formats):
    labels = [None, "", '"', 'a "quoted", comma\nand newline', "\\N", "NULL", " padded "]
    frame = pd.DataFrame({"sample_id": range(len(labels)), "label": labels})

    run_merge(postgres, sample, frame, plan=path)

    with postgres.connect() as connection:
        stored = connection.execute(sa.select(sample.c.label).order_by(sample.c.sample_id)).scalars().all()
    assert stored == labels
    assert set(copy_formats) == {"BINARY"}


@every_postgres_path
def test_timestamps_with_a_zone_keep_their_instant_through_copy(postgres, path, copy_formats):
    instants = [
        pd.Timestamp("2024-01-01T12:00:00.123456Z"),
        pd.Timestamp("1999-12-31T23:59:59Z"),
        pd.Timestamp("2024-07-01T00:00:00.000001Z"),
    ]
    taken = pd.Series([*instants, pd.NaT]).dt.tz_convert("Asia/Kolkata")  # +05:30
    frame = pd.DataFrame({"sample_id": [1, 2, 3, 4], "taken": taken})

    run_merge(postgres, sample, frame, plan=path)

    with postgres.connect() as connection:
        stored = connection.execute(sa.select(sample.c.taken).order_by(sample.c.sample_id)).scalars().all()
    assert stored[:3] == [i.to_pydatetime() for i in instants]
    assert stored[3] is None
    assert set(copy_formats) == {"BINARY"}


@every_postgres_path
def test_decimals_keep_their_exact_value_through_copy(postgres, path, copy_formats):
    amounts = [Decimal("12345678901234.123456"), Decimal("0.000001"), Decimal("-42"), None]
    ratios = [0.1, 9.999, None, 1.5]
    frame = pd.DataFrame({"sample_id": [1, 2, 3, 4], "amount": amounts, "ratio": ratios})

    run_merge(postgres, sample, frame, plan=path)

    with postgres.connect() as connection:
        rows = connection.execute(sa.select(sample.c.amount, sample.c.ratio).order_by(sample.c.sample_id)).all()
    assert [r.amount for r in rows] == amounts
    assert [r.ratio for r in rows] == [Decimal("0.100"), Decimal("9.999"), None, Decimal("1.500")]
    assert "CSV" in copy_formats  # Decimal objects and floats for decimal columns: Postgres parses them


@every_postgres_path
def test_booleans_and_nullable_integers_survive_copy(postgres, path, copy_formats):
    frame = pd.DataFrame(
        {
            "sample_id": [1, 2, 3],
            "flag": pd.array([True, False, None], dtype="boolean"),
            "count": pd.array([2**62, None, 0], dtype="Int64"),
        }
    )

    run_merge(postgres, sample, frame, plan=path)

    with postgres.connect() as connection:
        rows = connection.execute(sa.select(sample.c.flag, sample.c.count).order_by(sample.c.sample_id)).all()
    assert [tuple(r) for r in rows] == [(True, 2**62), (False, None), (None, 0)]
    assert set(copy_formats) == {"BINARY"}


@every_postgres_path
def test_values_read_back_compare_unchanged_on_a_second_merge(postgres, path):
    frame = pd.DataFrame(
        {
            "sample_id": [1, 2],
            "label": ["", None],
            "taken": pd.to_datetime(["2024-01-01T12:00:00.123456Z", None], utc=True),
            "amount": [Decimal("1.000001"), None],
        }
    )
    run_merge(postgres, sample, frame, plan=path)

    result = run_merge(postgres, sample, frame, plan=path)

    assert counts(result) == (0, 0, 2)


def test_rows_spanning_several_load_chunks_all_arrive(engine, path, monkeypatch):
    monkeypatch.setattr(bulk_load, "COPY_CHUNK_ROWS", 7)
    monkeypatch.setattr(bulk_load, "SQLITE_BATCH_ROWS", 7)
    n = 50
    frame = items(*((f"I{i:03d}", i + 1, f"name {i}", V1 + timedelta(seconds=i)) for i in range(n)))
    children = {item_tag: tags(*((i + 1, t) for i in range(n) for t in ("s", "t")))}

    first = run_merge(engine, item, frame, children, plan=path)
    second = run_merge(engine, item, frame, children, plan=path)

    assert counts(first) == (n, 0, 0)
    assert first.children == {"item_tag": 2 * n}
    assert counts(second) == (0, 0, n)
    assert len(stored_items(engine)) == n
    assert len(stored_tags(engine)) == 2 * n


def test_a_composite_key_merges_on_all_its_columns(engine, path):
    first = pd.DataFrame({"day": ["d1", "d1", "d2"], "code": [1, 2, 1], "note": ["a", "b", "c"]})
    run_merge(engine, daily, first, plan=path)

    second = pd.DataFrame({"day": ["d1", "d2", "d2"], "code": [2, 1, 2], "note": ["B", "c", "n"]})
    result = run_merge(engine, daily, second, plan=path)

    assert counts(result) == (1, 1, 1)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(daily).order_by(daily.c.day, daily.c.code)).all()
    assert [tuple(r) for r in rows] == [("d1", 1, "a"), ("d1", 2, "B"), ("d2", 1, "c"), ("d2", 2, "n")]


def test_children_linked_on_a_composite_key_follow_their_own_parent(engine, path):
    parents = pd.DataFrame({"day": ["d1", "d1"], "code": [1, 2], "note": ["a", "b"]})
    marks = pd.DataFrame({"day": ["d1", "d1"], "code": [1, 2], "mark": ["x", "y"]})
    run_merge(engine, daily, parents, {daily_mark: marks}, plan=path)

    changed = pd.DataFrame({"day": ["d1", "d1"], "code": [1, 2], "note": ["a", "B"]})
    new_marks = pd.DataFrame({"day": ["d1", "d1", "d2"], "code": [1, 2, 1], "mark": ["x2", "y2", "z"]})
    result = run_merge(engine, daily, changed, {daily_mark: new_marks}, plan=path)

    assert result.children == {"daily_mark": 1}  # only (d1, 2) changed; (d2, 1) is no parent
    with engine.connect() as connection:
        rows = connection.execute(sa.select(daily_mark).order_by(daily_mark.c.code)).all()
    assert [tuple(r) for r in rows] == [("d1", 1, "x"), ("d1", 2, "y2")]


# --------------------------------------------------------------------------- zones on SQLite, link columns


def test_sqlite_keeps_the_instant_of_a_timestamp_given_in_another_zone(sqlite):
    engine = sqlite
    taken = pd.Series(pd.to_datetime(["2024-01-01T12:00:00Z"], utc=True)).dt.tz_convert("Europe/Helsinki")

    run_merge(engine, sample, pd.DataFrame({"sample_id": [1], "taken": taken}))

    with engine.connect() as connection:
        stored = connection.execute(sa.select(sample.c.taken)).scalar_one()
    assert _utc(stored) == datetime(2024, 1, 1, 12, tzinfo=timezone.utc)


def test_sqlite_a_newer_version_in_another_zone_still_wins(sqlite):
    engine = sqlite
    run_merge(engine, item, items(("A", 1, "old", pd.Timestamp("2024-01-01T12:00:00Z"))))
    newer = items(("A", 1, "new", pd.Timestamp("2024-01-01T12:30:00Z")))
    newer["modified"] = newer["modified"].dt.tz_convert("America/New_York")  # 07:30 local

    result = run_merge(engine, item, newer)

    assert counts(result) == (0, 1, 0)
    assert [name for _, _, name, _ in stored_items(engine)] == ["new"]


def test_a_child_frame_without_its_link_column_raises_merge_error(sqlite):
    engine = sqlite
    with pytest.raises(MergeError):
        run_merge(engine, item, items(("A", 1, "alpha", V1)), {item_tag: pd.DataFrame({"tag": ["x"]})})


# --------------------------------------------------------------------------- how stored rows are updated


def test_columns_absent_from_the_rows_keep_their_stored_values(engine, path):
    run_merge(engine, item, items(("A", 1, "alpha", V1)).assign(price=[Decimal("9.5000")]), plan=path)

    result = run_merge(engine, item, items(("A", 1, "alpha v2", V2)), plan=path)

    assert counts(result) == (0, 1, 0)
    with engine.connect() as connection:
        assert connection.execute(sa.select(item.c.name, item.c.price)).one() == ("alpha v2", Decimal("9.5000"))


def _referenced_parent(postgres: sa.Engine) -> tuple[sa.Table, sa.Table]:
    referencing = sa.MetaData()
    parent = sa.Table("parent", referencing, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
    child = sa.Table(
        "child",
        referencing,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="CASCADE"), nullable=False),
    )
    referencing.drop_all(postgres)
    referencing.create_all(postgres)
    return parent, child


@every_postgres_path
def test_a_table_referenced_by_a_foreign_key_is_updated_in_place(postgres, path):
    parent, child = _referenced_parent(postgres)
    run_merge(postgres, parent, pd.DataFrame({"id": [1], "name": ["old"]}), plan=path)
    with postgres.begin() as connection:
        connection.execute(child.insert(), [{"id": 10, "parent_id": 1}])

    result = run_merge(postgres, parent, pd.DataFrame({"id": [1], "name": ["new"]}), plan=path)

    assert counts(result) == (0, 1, 0)
    with postgres.connect() as connection:
        assert connection.execute(sa.select(parent.c.name)).scalar_one() == "new"
        assert connection.execute(sa.select(child.c.parent_id)).scalar_one() == 1  # not cascaded away


@every_postgres_path
def test_a_newer_version_merged_while_an_older_merge_is_open_wins(postgres, path):
    run_merge(postgres, item, items(("A", 1, "v1", V1)), plan=path)
    finished = threading.Event()

    def merge_newer_meanwhile() -> None:
        run_merge(postgres, item, items(("A", 1, "v3", V3)), plan=path)
        finished.set()

    with postgres.begin() as connection:
        merge(connection, item, items(("A", 1, "v2", V2)), plan=path)
        other = threading.Thread(target=merge_newer_meanwhile)
        other.start()
        assert not finished.wait(0.5), "a second writer went ahead of an open merge"
    other.join(timeout=30)

    assert finished.is_set()
    assert stored_items(postgres) == [("A", 1, "v3", V3)]


@pytest.mark.parametrize("path", ["staged", "direct"])  # the paths that keep the indexes
def test_a_merge_leaves_the_table_readable_while_it_is_open(postgres, path):
    engine = postgres
    run_merge(engine, item, items(("A", 1, "v1", V1)), plan=path)

    with engine.begin() as connection:
        merge(connection, item, items(("A", 1, "v2", V2)), plan=path)
        with engine.connect() as reader:
            seen = reader.execute(sa.select(item.c.name)).scalar_one()

    assert seen == "v1"
    assert stored_items(engine) == [("A", 1, "v2", V2)]


@every_postgres_path
def test_a_key_another_writer_commits_during_a_merge_is_merged_by_version(postgres, path):
    other = postgres.connect()
    pending = other.begin()
    other.execute(item.insert(), {"item_id": "B", "item_key": 2, "name": "v3", "modified": V3.to_pydatetime()})
    results = []

    def merge_the_same_key_meanwhile() -> None:
        results.append(run_merge(postgres, item, items(("A", 1, "v2", V2), ("B", 2, "v2", V2)), plan=path))

    merging = threading.Thread(target=merge_the_same_key_meanwhile)
    merging.start()
    merging.join(0.5)
    assert merging.is_alive(), "the merge did not wait for the other writer's uncommitted key"
    pending.commit()
    other.close()
    merging.join(timeout=30)

    assert counts(results[0]) == (1, 0, 1)  # A new; B's stored v3 is newer than the merged v2
    assert stored_items(postgres) == [("A", 1, "v2", V2), ("B", 2, "v3", V3)]
    if path == "direct":  # B looked new, and its copy met the committed key: every row upserted
        assert results[0].path == "staged"
        assert "another writer committed one of the new keys meanwhile" in results[0].reason


@every_postgres_path
def test_a_key_another_writer_commits_during_a_merge_takes_a_newer_version(postgres, path):
    other = postgres.connect()
    pending = other.begin()
    other.execute(item.insert(), {"item_id": "B", "item_key": 2, "name": "v1", "modified": V1.to_pydatetime()})
    results = []
    merging = threading.Thread(
        target=lambda: results.append(run_merge(postgres, item, items(("B", 2, "v2", V2)), plan=path))
    )
    merging.start()
    merging.join(0.5)
    pending.commit()
    other.close()
    merging.join(timeout=30)

    assert counts(results[0]) == (0, 1, 0)
    assert stored_items(postgres) == [("B", 2, "v2", V2)]


# --------------------------------------------------------------------------- bulk loads: indexes built again


def index_definitions(engine: sa.Engine, table: str) -> dict[str, tuple[int, str]]:
    """Each index of the table: name -> (oid, definition). A rebuilt index has a new oid."""
    query = sa.text(
        "SELECT c.relname, c.oid, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = CAST(:table AS regclass)"
    )
    with engine.connect() as connection:
        return {name: (oid, definition) for name, oid, definition in connection.execute(query, {"table": table})}


def constraint_definitions(engine: sa.Engine, table: str) -> set[tuple[str, str]]:
    query = sa.text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = CAST(:table AS regclass)"
    )
    with engine.connect() as connection:
        return set(connection.execute(query, {"table": table}).all())


def definitions_only(indexes: dict[str, tuple[int, str]]) -> dict[str, str]:
    return {name: definition for name, (_, definition) in indexes.items()}


def test_a_bulk_merge_builds_every_index_and_key_constraint_again(postgres):
    engine = postgres
    with engine.begin() as connection:  # one a user added: rebuilt as it was, partial as it was
        connection.execute(sa.text("CREATE INDEX ix_item_named ON item (name) WHERE name IS NOT NULL"))
    before = {name: index_definitions(engine, name) for name in ("item", "item_tag")}
    constraints = constraint_definitions(engine, "item")

    result = run_merge(
        engine, item, items(("A", 1, "alpha", V1), ("B", 2, "beta", V1)), {item_tag: tags((1, "x"))}, plan="rebuild"
    )

    for name, indexes in before.items():
        after = index_definitions(engine, name)
        assert definitions_only(after) == definitions_only(indexes)
        assert all(after[index][0] != oid for index, (oid, _) in indexes.items()), f"{name}: not rebuilt"
    assert constraint_definitions(engine, "item") == constraints
    assert (result.path, result.child_paths["item_tag"].path) == ("rebuild", "rebuild")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(item.insert(), {"item_id": "C", "item_key": 1, "modified": V1.to_pydatetime()})


def test_the_cve_tables_keep_their_contract_indexes_through_a_bulk_merge(postgres):
    from etl_platform.defs.cve import tables as cve_tables

    cve_tables.metadata.create_all(postgres)
    names = ("cve", "cve_reference")
    before = {name: definitions_only(index_definitions(postgres, name)) for name in names}
    cves = pd.DataFrame(
        {"cve_id": ["CVE-2024-0001"], "cve_key": pd.array([2024 * 10**10 + 1], dtype="Int64"), "last_modified": [V1]}
    )
    references = pd.DataFrame({"cve_key": pd.array([2024 * 10**10 + 1], dtype="Int64"), "url": ["https://example.org"]})

    with postgres.begin() as connection:
        result = merge(connection, cve_tables.cve, cves, {cve_tables.cve_reference: references}, plan="rebuild")

    assert (result.inserted, result.children) == (1, {"cve_reference": 1})
    assert {name: definitions_only(index_definitions(postgres, name)) for name in names} == before
    cve_tables.metadata.drop_all(postgres)


def test_readers_wait_for_a_bulk_merge_and_then_see_all_of_it(postgres):
    engine = postgres
    run_merge(engine, item, items(("A", 1, "v1", V1)), plan="rebuild")
    seen: list[list[str]] = []

    def read() -> None:
        with engine.connect() as reader:
            seen.append(list(reader.execute(sa.select(item.c.name).order_by(item.c.item_id)).scalars()))

    with engine.begin() as connection:
        merge(connection, item, items(("A", 1, "v2", V2), ("B", 2, "v1", V1)), plan="rebuild")
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(0.5)
        assert reader.is_alive(), "a reader went ahead of a merge that had dropped the indexes"
    reader.join(timeout=30)

    assert seen == [["v2", "v1"]]


def test_a_bulk_merge_that_cannot_lock_its_table_soon_takes_the_direct_path(postgres):
    engine = postgres
    run_merge(engine, item, items(("A", 1, "v1", V1)), plan="rebuild")
    before = index_definitions(engine, "item")

    with engine.connect() as reader, reader.begin():
        reader.execute(sa.select(item.c.name)).all()  # a long reader: its lock lasts to its transaction's end
        with engine.begin() as connection:
            impatient = MergePlan.force("rebuild", lock_timeout="200ms")
            result = merge(connection, item, items(("A", 1, "v2", V2)), plan=impatient)
            lock_timeout = connection.execute(sa.text("SHOW lock_timeout")).scalar_one()

    assert counts(result) == (0, 1, 0)
    assert stored_items(engine) == [("A", 1, "v2", V2)]
    assert index_definitions(engine, "item") == before  # the same indexes: not rebuilt
    assert lock_timeout == "0"  # the caller's setting, back for the rest of its transaction
    assert (result.plan.path, result.path) == ("rebuild", "direct")
    assert result.reason.endswith("not taken: its lock was not granted within 200ms")


def test_an_error_inside_a_bulk_merge_leaves_the_table_with_its_indexes(postgres, monkeypatch):
    engine = postgres
    run_merge(engine, item, items(("A", 1, "v1", V1)), plan="rebuild")
    before = index_definitions(engine, "item")
    load_rows = upsert.load_rows

    def failing_load(connection, table, frame):
        if table.name == "item":
            raise RuntimeError("the load broke off")
        load_rows(connection, table, frame)

    monkeypatch.setattr(upsert, "load_rows", failing_load)
    with engine.begin() as connection:  # a caller that goes on after the error and commits
        with pytest.raises(RuntimeError, match="broke off"):
            merge(connection, item, items(("A", 1, "v2", V2), ("B", 2, "v1", V1)), plan="rebuild")

    assert stored_items(engine) == [("A", 1, "v1", V1)]
    assert index_definitions(engine, "item") == before


def analyse(engine: sa.Engine, table: str) -> None:
    """The table's statistics counted, as autovacuum would: what a plan reads the table's size from."""
    with engine.begin() as connection:
        connection.execute(sa.text(f"ANALYZE {table}"))


def run_planned(engine: sa.Engine, table: sa.Table, frame: pd.DataFrame, **thresholds):
    """A merge planned by `plan_merge` on the thresholds given (a small table's), the module's for the rest."""
    with engine.begin() as connection:
        return merge(connection, table, frame, plan=plan_merge(connection, table, frame, **thresholds))


def test_only_a_batch_large_against_its_table_rebuilds_the_indexes(postgres):
    engine = postgres
    small_tables = {"direct_copy_min_rows": 0, "rebuild_min_rows": 0, "rebuild_min_share": 0.5}
    run_merge(engine, item, items(*((f"K{i}", i, "v1", V1) for i in range(10))))
    analyse(engine, "item")
    before = index_definitions(engine, "item")

    two = run_planned(engine, item, items(("K1", 1, "v2", V2), ("K2", 2, "v2", V2)), **small_tables)  # against 10
    kept = index_definitions(engine, "item")
    six = run_planned(engine, item, items(*((f"K{i}", i, "v3", V3) for i in range(6))), **small_tables)
    rebuilt = index_definitions(engine, "item")

    assert (two.path, six.path) == ("direct", "rebuild")
    assert kept == before
    assert all(rebuilt[name][0] != oid for name, (oid, _) in before.items())
    assert definitions_only(rebuilt) == definitions_only(before)


def test_two_bulk_merges_of_a_table_both_read_first_both_finish(postgres):
    engine = postgres
    run_merge(engine, item, items(("A", 1, "v1", V1)), plan="rebuild")
    both_read = threading.Barrier(2)
    errors: list[Exception] = []

    def read_then_merge(rows: pd.DataFrame) -> None:
        try:
            with engine.begin() as connection:
                connection.execute(sa.select(item.c.name)).all()  # each holds a lock the other's rebuild waits for
                both_read.wait(timeout=10)
                merge(connection, item, rows, plan="rebuild")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    merges = [
        threading.Thread(target=read_then_merge, args=(items(("A", 1, "v2", V2), ("B", 2, "v2", V2)),)),
        threading.Thread(target=read_then_merge, args=(items(("A", 1, "v3", V3)),)),
    ]
    for thread in merges:
        thread.start()
    for thread in merges:
        thread.join(timeout=60)

    assert errors == []
    assert stored_items(engine) == [("A", 1, "v3", V3), ("B", 2, "v2", V2)]


# --------------------------------------------------------------------------- the path: planned in one place, reported


def test_a_merge_reports_the_path_it_was_forced_down(engine, path):
    result = run_merge(engine, item, items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"))}, plan=path)

    assert (result.plan.path, result.plan.forced, result.path) == (path, True, path)
    assert result.path_metadata() == {"merge_path": path, "merge_reason": "forced by the caller"}
    child_path = {"portable": "portable", "rebuild": "rebuild"}.get(path, "direct")  # children are copied in
    assert result.path_metadata("item_tag")["merge_path"] == child_path


def test_a_merge_on_sqlite_is_planned_down_the_portable_path(sqlite):
    result = run_merge(sqlite, item, items(("A", 1, "alpha", V1)))

    assert (result.plan.path, result.path) == ("portable", "portable")
    assert result.path_metadata() == {
        "merge_path": "portable",
        "merge_reason": "sqlite: every row staged and upserted (the other paths need Postgres)",
    }


def test_a_plan_names_its_path_and_the_figures_it_was_decided_on(postgres):
    run_merge(postgres, item, items(*((f"K{i}", i, "v1", V1) for i in range(20))))
    analyse(postgres, "item")
    thresholds = {"direct_copy_min_rows": 3, "rebuild_min_rows": 5, "rebuild_min_share": 0.5}

    def plan(rows: int):
        frame = items(*((f"K{i}", i, "v2", V2) for i in range(rows)))
        with postgres.connect() as connection:
            return plan_merge(connection, item, frame, **thresholds)

    small, large, larger, largest = plan(2), plan(4), plan(6), plan(10)

    assert (small.path, small.table_rows) == ("staged", None)  # the table's size is not looked up
    assert small.reason == "2 rows, fewer than DIRECT_COPY_MIN_ROWS (3): every row staged and upserted"
    assert (large.path, large.table_rows) == ("direct", None)
    assert large.reason.startswith("4 rows, fewer than REBUILD_MIN_ROWS (5)")
    assert (larger.path, larger.table_rows) == ("direct", 20)
    assert larger.reason.startswith("6 rows, fewer than REBUILD_MIN_SHARE (0.5) of the ~20 the table holds")
    assert (largest.path, largest.batch_rows, largest.table_rows) == ("rebuild", 10, 20)
    assert largest.reason.startswith("10 rows, at least REBUILD_MIN_ROWS (5) and REBUILD_MIN_SHARE (0.5) of the ~20")
    assert (largest.direct_copy_min_rows, largest.rebuild_min_rows, largest.rebuild_min_share) == (3, 5, 0.5)


def test_a_plan_is_made_on_the_modules_thresholds_unless_given_others(postgres):
    with postgres.connect() as connection:
        plan = plan_merge(connection, item, items(("A", 1, "alpha", V1)))

    assert plan.path == "staged"
    assert (plan.direct_copy_min_rows, plan.rebuild_min_rows, plan.rebuild_min_share, plan.lock_timeout) == (
        merge_plan.DIRECT_COPY_MIN_ROWS,
        merge_plan.REBUILD_MIN_ROWS,
        merge_plan.REBUILD_MIN_SHARE,
        merge_plan.LOCK_TIMEOUT,
    )


def test_rows_without_their_childrens_link_columns_are_planned_staged(postgres):
    frame = items(("A", 1, "alpha", V1)).drop(columns=["item_key"])

    with postgres.connect() as connection:
        plan = plan_merge(connection, item, frame, [item_tag], direct_copy_min_rows=0)

    assert plan.path == "staged"
    assert plan.reason == "the rows lack their children's link columns ['item_key']: every row staged and upserted"


def test_a_forced_rebuild_of_a_table_a_foreign_key_references_takes_the_direct_path(postgres):
    parent, _ = _referenced_parent(postgres)

    result = run_merge(postgres, parent, pd.DataFrame({"id": [1], "name": ["new"]}), plan="rebuild")

    assert (result.plan.path, result.path) == ("rebuild", "direct")
    assert result.path_metadata()["merge_reason"] == (
        "rebuild planned (forced by the caller), not taken: a foreign key references the table"
    )


def test_a_child_table_reports_its_own_path_and_none_when_untouched(postgres):
    frame, children = items(("A", 1, "alpha", V1)), {item_tag: tags((1, "x"))}

    first = run_merge(postgres, item, frame, children)  # planned: one row, far below every threshold
    again = run_merge(postgres, item, frame, children)

    assert first.path_metadata("item_tag") == {
        "merge_path": "direct",
        "merge_reason": f"1 row, fewer than REBUILD_MIN_ROWS ({merge_plan.REBUILD_MIN_ROWS:,}): "
        "copied in, the indexes kept",
    }
    assert again.path_metadata("item_tag") == {}  # no parent changed: no child row replaced


@pytest.mark.parametrize("path", POSTGRES_PATHS)
def test_a_postgres_path_cannot_be_forced_on_sqlite(sqlite, path):
    with pytest.raises(MergeError, match=f"the {path} path needs Postgres, not sqlite"):
        run_merge(sqlite, item, items(("A", 1, "alpha", V1)), plan=path)


def test_the_portable_path_cannot_be_forced_on_postgres(postgres):
    with pytest.raises(MergeError, match="the portable path is for databases other than Postgres"):
        run_merge(postgres, item, items(("A", 1, "alpha", V1)), plan="portable")


def test_an_unknown_path_is_refused(sqlite):
    with pytest.raises(MergeError, match="no merge path 'fast': one of portable, staged, direct, rebuild"):
        run_merge(sqlite, item, items(("A", 1, "alpha", V1)), plan="fast")
