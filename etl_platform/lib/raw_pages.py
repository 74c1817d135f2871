"""The raw layer: pages kept as the source sent them, one folder per partition or run, and their manifest.

A raw asset keeps each body byte for byte in `<storage>/<asset key path>/<partition or run>/` and
returns a manifest (`manifest`), which the JSON IO manager stores beside that folder as
`<partition or run>.json`. Every manifest has one shape; clean assets read the pages back through
it (`read_pages`, `page_items`, `items_at`), never by rebuilding a path.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
from dagster import AssetKey, asset
from upath import UPath

from etl_platform.lib.storage import storage_root, write_bytes

PAGE_PREFIX = "page-"
RAW_KINDS = {"json", "python"}


def raw_asset(key: AssetKey, *, group: str, description: str | None = None, **options):
    """`@asset` of a raw layer: the manifest it returns is stored by the JSON IO manager.

    Without `description`, the function's docstring describes the asset.
    """
    return asset(
        key=key, group_name=group, io_manager_key="json_io_manager", kinds=RAW_KINDS, description=description, **options
    )


def raw_folder(root: UPath, key: AssetKey, part: str) -> UPath:
    """Where the pages of a partition (or of a run) are kept: `<root>/<key path>/<part>/`."""
    return root.joinpath(*key.path, part)


def page_name(number: int, *, prefix: str = PAGE_PREFIX, digits: int = 4, extension: str = "json") -> str:
    """`page-0003.json`; sorting the names sorts the pages."""
    return f"{prefix}{number:0{digits}d}.{extension}"


def write_page(folder: UPath, name: str, body: bytes) -> str:
    """Keep one body as sent; the name, for the manifest."""
    write_bytes(folder / name, body)
    return name


def kept_pages(folder: UPath, prefix: str = PAGE_PREFIX) -> list[str]:
    """Names of the pages an earlier attempt left in the folder, sorted."""
    if not folder.exists():
        return []
    return sorted(path.name for path in folder.iterdir() if path.name.startswith(prefix))


def clear_folder(folder: UPath) -> None:
    """Delete what an earlier run kept: no page of an earlier, longer answer may linger."""
    if folder.exists():
        for path in folder.iterdir():
            path.unlink()


def manifest(
    *,
    partition: str,
    source: str,
    params: dict,
    folder: UPath,
    pages: Sequence[str],
    records: int,
    requests: int,
    **extras: Any,
) -> dict:
    """What a raw asset returns: where its pages are, what was asked for, and what came back.

    `partition` is the partition key, or the run's folder name for an unpartitioned asset;
    `extras` are what the domain adds (counts its clean assets or checks compare against).
    """
    return {
        "partition": partition,
        "source": source,
        "params": params,
        "folder": str(folder),
        "pages": list(pages),
        "records": records,
        "requests": requests,
        "fetched_at": datetime.now(timezone.utc).isoformat(),
        **extras,
    }


def read_pages(manifest: dict) -> Iterator[bytes]:
    """The bodies of the pages a manifest lists, one at a time, in order."""
    folder = storage_root(manifest["folder"])
    for name in manifest["pages"]:
        yield (folder / name).read_bytes()


def page_items(manifest: dict, field: str) -> Iterator[list]:
    """The records of each page (the list under `field` of its JSON object), one page at a time."""
    for body in read_pages(manifest):
        yield orjson.loads(body)[field]


def items_at(manifest: dict, field: str, positions: Collection[int]) -> dict[int, Any]:
    """The records at these positions (counted over all pages in order), exactly as the source sent them."""
    wanted, found, first = set(positions), {}, 0
    for items in page_items(manifest, field) if wanted else ():
        found.update((p, items[p - first]) for p in wanted if first <= p < first + len(items))
        first += len(items)
        if len(found) == len(wanted):
            break
    return found
