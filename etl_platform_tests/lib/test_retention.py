"""Retention sweeps on local disk (ages set with os.utime) and on a loopback S3 (a future `now`)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from etl_platform.lib.retention import delete_older_than, modified_at
from etl_platform.lib.storage import storage_root, write_bytes

NOW = datetime.now(timezone.utc)


def make_file(path: Path, age: timedelta, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    moment = (NOW - age).timestamp()
    os.utime(path, (moment, moment))
    return path


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- local disk


def test_local_files_older_than_the_cutoff_are_deleted_newer_kept(tmp_path):
    old = make_file(tmp_path / "raw" / "2024-01-01" / "page-0.json", timedelta(days=10), b"12345")
    make_file(tmp_path / "raw" / "2024-01-09" / "page-0.json", timedelta(days=2))

    sweep = delete_older_than(storage_root(str(tmp_path / "raw")), timedelta(days=7), now=NOW)

    assert files_under(tmp_path) == ["raw/2024-01-09/page-0.json"]
    assert [Path(p) for p in sweep.deleted] == [old]
    assert sweep.kept == 1
    assert sweep.bytes_freed == 5


def test_a_local_file_just_inside_max_age_is_kept(tmp_path):
    make_file(tmp_path / "raw" / "young.json", timedelta(days=7) - timedelta(minutes=5))
    make_file(tmp_path / "raw" / "old.json", timedelta(days=7) + timedelta(minutes=5))

    sweep = delete_older_than(storage_root(str(tmp_path / "raw")), timedelta(days=7), now=NOW)

    assert files_under(tmp_path) == ["raw/young.json"]
    assert (len(sweep.deleted), sweep.kept) == (1, 1)


def test_a_local_sweep_stays_inside_its_folder(tmp_path):
    make_file(tmp_path / "raw" / "old.json", timedelta(days=30))
    make_file(tmp_path / "raw-archive" / "old.json", timedelta(days=30))
    make_file(tmp_path / "clean" / "old.parquet", timedelta(days=30))

    delete_older_than(storage_root(str(tmp_path / "raw")), timedelta(days=7), now=NOW)

    assert files_under(tmp_path) == ["clean/old.parquet", "raw-archive/old.json"]


def test_now_defaults_to_the_current_time(tmp_path):
    make_file(tmp_path / "raw" / "old.json", timedelta(days=8))
    make_file(tmp_path / "raw" / "new.json", timedelta(days=6))

    delete_older_than(storage_root(str(tmp_path / "raw")), timedelta(days=7))

    assert files_under(tmp_path) == ["raw/new.json"]


def test_a_missing_folder_is_an_empty_sweep(tmp_path):
    sweep = delete_older_than(storage_root(str(tmp_path / "never-written")), timedelta(days=1))

    assert (sweep.deleted, sweep.kept, sweep.bytes_freed) == ([], 0, 0)


@pytest.mark.parametrize(
    "info",
    [
        {"mtime": 1_700_000_000.0},
        {"LastModified": datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)},
        {"last_modified": datetime.fromtimestamp(1_700_000_000, tz=timezone.utc).replace(tzinfo=None)},
        {"created": 1_700_000_000},
    ],
)
def test_modified_at_reads_every_fsspec_flavour_as_utc(info):
    assert modified_at(info) == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)


# --------------------------------------------------------------------------- S3


@pytest.fixture
def s3_layers(s3_bucket, s3_server):
    """Objects in three folders of the bucket, all written just now."""
    root = storage_root(f"s3://{s3_bucket}/prefix")
    for name in ("raw/2024-01-01/page-0.json", "raw/2024-01-02/page-0.json", "raw-archive/a.json", "clean/c.parquet"):
        write_bytes(root / name, b"0123456789")
    return root


def s3_keys(endpoint: str, bucket: str) -> list[str]:
    listing = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_s3_objects_older_than_the_cutoff_are_deleted(s3_layers, s3_bucket, s3_server):
    sweep = delete_older_than(s3_layers / "raw", timedelta(days=7), now=NOW + timedelta(days=8))

    assert s3_keys(s3_server, s3_bucket) == ["prefix/clean/c.parquet", "prefix/raw-archive/a.json"]
    assert sorted(sweep.deleted) == [
        f"{s3_bucket}/prefix/raw/2024-01-01/page-0.json",
        f"{s3_bucket}/prefix/raw/2024-01-02/page-0.json",
    ]
    assert (sweep.kept, sweep.bytes_freed) == (0, 20)


def test_s3_objects_younger_than_the_cutoff_are_kept(s3_layers, s3_bucket, s3_server):
    before = s3_keys(s3_server, s3_bucket)

    sweep = delete_older_than(s3_layers / "raw", timedelta(days=7), now=NOW + timedelta(days=6))

    assert s3_keys(s3_server, s3_bucket) == before
    assert (sweep.deleted, sweep.kept) == ([], 2)


def test_an_s3_sweep_of_an_empty_prefix_does_nothing(s3_layers, s3_bucket, s3_server):
    before = s3_keys(s3_server, s3_bucket)

    sweep = delete_older_than(s3_layers / "diff", timedelta(days=1), now=NOW + timedelta(days=30))

    assert s3_keys(s3_server, s3_bucket) == before
    assert (sweep.deleted, sweep.kept) == ([], 0)
