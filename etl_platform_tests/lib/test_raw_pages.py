"""The raw layer's folder, page names, manifest and reading back, on local disk."""

from __future__ import annotations

import orjson
from dagster import AssetKey
from upath import UPath

from etl_platform.lib import raw_pages

KEY = AssetKey(["shop", "raw", "orders"])


def kept(tmp_path, pages: list[list]) -> dict:
    folder = raw_pages.raw_folder(UPath(tmp_path), KEY, "2024-06-07")
    names = [
        raw_pages.write_page(folder, raw_pages.page_name(n), orjson.dumps({"items": items}))
        for n, items in enumerate(pages)
    ]
    return raw_pages.manifest(
        partition="2024-06-07",
        source="http://source",
        params={"day": "2024-06-07"},
        folder=folder,
        pages=names,
        records=sum(map(len, pages)),
        requests=len(pages),
        total=9,
    )


def test_pages_are_kept_in_the_folder_of_the_key_and_partition_and_listed_in_one_manifest_shape(tmp_path):
    manifest = kept(tmp_path, [[1, 2], [3]])

    assert manifest["folder"] == str(tmp_path / "shop" / "raw" / "orders" / "2024-06-07")
    assert manifest["pages"] == ["page-0000.json", "page-0001.json"]
    assert {k: v for k, v in manifest.items() if k != "fetched_at"} == {
        "partition": "2024-06-07",
        "source": "http://source",
        "params": {"day": "2024-06-07"},
        "folder": manifest["folder"],
        "pages": ["page-0000.json", "page-0001.json"],
        "records": 3,
        "requests": 2,
        "total": 9,
    }


def test_pages_are_read_back_in_order_and_records_found_by_position(tmp_path):
    manifest = kept(tmp_path, [[1, 2], [], [3, 4]])

    assert list(raw_pages.page_items(manifest, "items")) == [[1, 2], [], [3, 4]]
    assert raw_pages.items_at(manifest, "items", [0, 3, 7]) == {0: 1, 3: 4}


def test_a_page_name_sorts_as_its_number_and_takes_a_prefix():
    assert raw_pages.page_name(12, digits=9) == "page-000000012.json"
    assert raw_pages.page_name(1, prefix="APPROVED-") == "APPROVED-0001.json"


def test_clearing_a_folder_leaves_no_page_of_an_earlier_run(tmp_path):
    manifest = kept(tmp_path, [[1], [2]])
    folder = UPath(manifest["folder"])

    raw_pages.clear_folder(folder)
    raw_pages.clear_folder(UPath(tmp_path / "never-written"))

    assert raw_pages.kept_pages(folder) == []
