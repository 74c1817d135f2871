"""Storage paths and the JSON / Parquet IO managers, on local disk and on a loopback S3."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetIn, DagsterInstance, StaticPartitionsDefinition, asset, materialize
from upath import UPath

from etl_platform.definitions import build_resources
from etl_platform.lib.storage import (
    JsonIOManagerFactory,
    ParquetIOManagerFactory,
    StorageResource,
    storage_root,
    write_bytes,
)
from etl_platform_tests.runs import materialization_metadata

DAYS = StaticPartitionsDefinition(["2024-01-01", "2024-01-02"])


# --------------------------------------------------------------------------- assets used as fixtures


@asset(key_prefix=["raw", "nvd"], partitions_def=DAYS, io_manager_key="json_io")
def pages(context) -> dict:
    return {"day": context.partition_key, "items": [1, 2, 3], "note": "ünïcode"}


@asset(partitions_def=DAYS, ins={"pages": AssetIn(key=["raw", "nvd", "pages"])}, io_manager_key="json_io")
def page_summary(pages: dict) -> dict:
    return {"day": pages["day"], "count": len(pages["items"]), "note": pages["note"]}


def cve_frame(day: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cve_id": pd.Series(["CVE-2024-0001", "CVE-2024-0002", None], dtype=object),
            "cve_key": pd.array([20240000000001, 20240000000002, None], dtype="Int64"),
            "score": [9.8, None, 4.3],
            "last_modified": pd.to_datetime(
                [f"{day}T10:00:00.123Z", f"{day}T11:00:00Z", None], utc=True, format="ISO8601"
            ),
        }
    )


@asset(key_prefix=["clean"], partitions_def=DAYS, io_manager_key="parquet_io")
def cve(context) -> pd.DataFrame:
    return cve_frame(context.partition_key)


@asset(partitions_def=DAYS, ins={"cve": AssetIn(key=["clean", "cve"])}, io_manager_key="json_io")
def cve_check(cve: pd.DataFrame) -> dict:
    pd.testing.assert_frame_equal(cve, cve_frame(str(cve["last_modified"].iloc[0].date())))
    return {"rows": len(cve), "dtypes": {c: str(t) for c, t in cve.dtypes.items()}}


@asset(key_prefix=["clean"], partitions_def=DAYS, io_manager_key="parquet_io")
def empty(context) -> pd.DataFrame:
    return cve_frame(context.partition_key).iloc[0:0]


@asset(key_prefix=["state"], io_manager_key="json_io")
def cursor() -> dict:
    return {"next": 7}


def run(assets, base_url: str, partition: str | None = "2024-01-01", selection=None):
    resources = {
        "json_io": JsonIOManagerFactory(base_url=base_url),
        "parquet_io": ParquetIOManagerFactory(base_url=base_url),
    }
    return materialize(
        assets, partition_key=partition, resources=resources, instance=DagsterInstance.ephemeral(), selection=selection
    )


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def s3_keys(endpoint: str, bucket: str) -> set[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return {o["Key"] for o in listing.get("Contents", [])}


def s3_bytes(endpoint: str, bucket: str, key: str) -> bytes:
    return s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()


# --------------------------------------------------------------------------- storage_root and StorageResource


def bound_storage() -> StorageResource:
    """The code location's storage resource, bound to the environment and set up as a run would."""
    return build_resources()["storage"].process_config_and_initialize()


def test_storage_root_defaults_to_storage_under_etl_home(etl_env):
    assert storage_root() == UPath(Path(etl_env["ETL_HOME"]) / "storage")
    assert bound_storage().root() == UPath(Path(etl_env["ETL_HOME"]) / "storage")


def test_storage_root_follows_etl_storage_url(etl_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_STORAGE_URL", str(tmp_path / "elsewhere"))

    assert storage_root() == UPath(tmp_path / "elsewhere")
    assert bound_storage().root() == UPath(tmp_path / "elsewhere")


def test_an_explicit_url_wins_over_the_environment(etl_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_STORAGE_URL", str(tmp_path / "from-env"))

    assert StorageResource(base_url=str(tmp_path / "explicit")).root() == UPath(tmp_path / "explicit")


def test_an_s3_root_uses_aws_endpoint_url(s3_bucket, s3_server):
    root = storage_root(f"s3://{s3_bucket}/prefix")

    assert root.protocol == "s3"
    assert root.storage_options["client_kwargs"]["endpoint_url"] == s3_server


def test_write_bytes_creates_missing_local_folders(tmp_path):
    target = UPath(tmp_path) / "a" / "b" / "file.bin"

    write_bytes(target, b"payload")

    assert (tmp_path / "a" / "b" / "file.bin").read_bytes() == b"payload"


def test_storage_resource_writes_to_the_s3_bucket(s3_bucket, s3_server, etl_env, monkeypatch):
    monkeypatch.setenv("ETL_STORAGE_URL", f"s3://{s3_bucket}/prefix")

    write_bytes(bound_storage().root() / "raw" / "page.json", b'{"a": 1}')

    assert s3_keys(s3_server, s3_bucket) == {"prefix/raw/page.json"}
    assert s3_bytes(s3_server, s3_bucket, "prefix/raw/page.json") == b'{"a": 1}'


# --------------------------------------------------------------------------- JSON IO manager


def test_json_output_lands_at_base_key_parts_partition_json(tmp_path):
    run([pages], str(tmp_path))

    written = tmp_path / "raw" / "nvd" / "pages" / "2024-01-01.json"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "raw/nvd/pages/2024-01-01.json"
    ]
    assert json.loads(written.read_text(encoding="utf-8")) == {
        "day": "2024-01-01",
        "items": [1, 2, 3],
        "note": "ünïcode",
    }


def test_json_round_trips_into_a_downstream_asset(tmp_path):
    result = run([pages, page_summary], str(tmp_path), partition="2024-01-02")

    assert result.output_for_node("page_summary") == {"day": "2024-01-02", "count": 3, "note": "ünïcode"}
    assert json.loads((tmp_path / "page_summary" / "2024-01-02.json").read_text()) == {
        "count": 3,
        "day": "2024-01-02",
        "note": "ünïcode",
    }


def test_json_an_unpartitioned_asset_is_stored_at_base_key_parts_json(tmp_path):
    run([cursor], str(tmp_path), partition=None)

    assert json.loads((tmp_path / "state" / "cursor.json").read_text()) == {"next": 7}


def test_json_partitions_are_separate_files(tmp_path):
    run([pages], str(tmp_path), partition="2024-01-01")
    run([pages], str(tmp_path), partition="2024-01-02")

    assert sorted(p.name for p in (tmp_path / "raw" / "nvd" / "pages").iterdir()) == [
        "2024-01-01.json",
        "2024-01-02.json",
    ]


def test_json_on_s3_lands_at_bucket_prefix_key_parts_partition_and_reads_back(s3_bucket, s3_server):
    result = run([pages, page_summary], f"s3://{s3_bucket}/prefix")

    assert s3_keys(s3_server, s3_bucket) == {
        "prefix/raw/nvd/pages/2024-01-01.json",
        "prefix/page_summary/2024-01-01.json",
    }
    stored = json.loads(s3_bytes(s3_server, s3_bucket, "prefix/raw/nvd/pages/2024-01-01.json"))
    assert stored == {"day": "2024-01-01", "items": [1, 2, 3], "note": "ünïcode"}
    assert result.output_for_node("page_summary")["count"] == 3


# --------------------------------------------------------------------------- Parquet IO manager


def test_parquet_output_lands_at_base_key_parts_partition_parquet(tmp_path):
    run([cve], str(tmp_path))

    written = tmp_path / "clean" / "cve" / "2024-01-01.parquet"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [written]
    pd.testing.assert_frame_equal(pq.read_table(written).to_pandas(), cve_frame("2024-01-01"))


def test_parquet_round_trip_keeps_values_and_dtypes(tmp_path):
    result = run([cve, cve_check], str(tmp_path))

    assert result.output_for_node("cve_check") == {
        "rows": 3,
        "dtypes": {
            "cve_id": "object",
            "cve_key": "Int64",
            "score": "float64",
            "last_modified": "datetime64[ns, UTC]",
        },
    }


def test_parquet_output_metadata_has_row_count_and_column_schema(tmp_path):
    result = run([cve], str(tmp_path))

    metadata = materialization_metadata(result, "clean/cve")
    assert metadata["dagster/row_count"] == 3
    schema = metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == [
        ("cve_id", "object"),
        ("cve_key", "Int64"),
        ("score", "float64"),
        ("last_modified", "datetime64[ns, UTC]"),
    ]
    assert "CVE-2024-0001" in metadata["preview"]


def test_parquet_an_empty_frame_keeps_its_columns_and_reports_zero_rows(tmp_path):
    result = run([empty], str(tmp_path))

    metadata = materialization_metadata(result, "clean/empty")
    assert metadata["dagster/row_count"] == 0
    assert "preview" not in metadata
    stored = pq.read_table(tmp_path / "clean" / "empty" / "2024-01-01.parquet").to_pandas()
    assert list(stored.columns) == ["cve_id", "cve_key", "score", "last_modified"]
    assert len(stored) == 0


def test_parquet_on_s3_lands_at_bucket_prefix_key_parts_partition_and_reads_back(s3_bucket, s3_server):
    result = run([cve, cve_check], f"s3://{s3_bucket}/prefix", partition="2024-01-02")

    assert s3_keys(s3_server, s3_bucket) == {
        "prefix/clean/cve/2024-01-02.parquet",
        "prefix/cve_check/2024-01-02.json",
    }
    stored = pq.read_table(io.BytesIO(s3_bytes(s3_server, s3_bucket, "prefix/clean/cve/2024-01-02.parquet")))
    pd.testing.assert_frame_equal(stored.to_pandas(), cve_frame("2024-01-02"))
    assert result.output_for_node("cve_check")["rows"] == 3


def test_io_managers_default_to_etl_storage_url(etl_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_STORAGE_URL", str(tmp_path / "store"))
    bound = build_resources()
    resources = {"json_io": bound["json_io_manager"], "parquet_io": bound["parquet_io_manager"]}

    materialize([pages, cve], partition_key="2024-01-01", resources=resources, instance=DagsterInstance.ephemeral())

    assert (tmp_path / "store" / "raw" / "nvd" / "pages" / "2024-01-01.json").is_file()
    assert (tmp_path / "store" / "clean" / "cve" / "2024-01-01.parquet").is_file()

