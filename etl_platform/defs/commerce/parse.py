"""Pure functions of the `commerce` group: source bodies -> rows, rates, prices.

Numbers are read from the source's text straight into `Decimal` (JSON with `parse_float`,
CSV as text): no value loaded ever passes through a float. (Only a quarantined product's payload,
kept as JSON as the store sent it, holds plain JSON numbers.)
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import pandas as pd

from etl_platform.lib.http import SourceError

CENT = Decimal("0.01")


class ParseError(SourceError):
    """A body that is not what the source documents; the message says where and what."""


# ---------------------------------------------------------------- money


def to_cents(value: Decimal | int | str) -> Decimal:
    """An amount rounded half-even to the cent."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def price_in_eur(price_usd: Decimal, usd_per_eur: Decimal) -> Decimal:
    """USD -> EUR at a rate quoted as USD per 1 EUR, half-even to the cent."""
    return to_cents(Decimal(price_usd) / Decimal(usd_per_eur))


def _decimal(text: Any) -> Decimal | None:
    """A published value, or None for a day without one (empty, NaN, N/A, null)."""
    if text is None or isinstance(text, bool):
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


# ---------------------------------------------------------------- ECB


def parse_sdmx_csv(body: bytes) -> list[dict]:
    """Observations of an SDMX `csvdata` answer: rate_date, base, quote, rate (None when blank)."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    needed = {"TIME_PERIOD", "OBS_VALUE", "CURRENCY", "CURRENCY_DENOM"}
    if not reader.fieldnames or not needed <= set(reader.fieldnames):
        raise ParseError(f"ECB csvdata: expected columns {sorted(needed)}, got {reader.fieldnames}")
    return [
        {
            "rate_date": _day(row["TIME_PERIOD"], "ECB csvdata"),
            "base": row["CURRENCY_DENOM"],
            "quote": row["CURRENCY"],
            "rate": _decimal(row["OBS_VALUE"]),
        }
        for row in reader
    ]


def parse_sdmx_json(body: bytes) -> list[dict]:
    """Observations of an SDMX-JSON 1.0 `jsondata` answer (one or more series)."""
    try:
        document = json.loads(body, parse_float=Decimal)
        structure = document["structure"]["dimensions"]
        series_dims = structure["series"]
        times = [value["id"] for value in structure["observation"][0]["values"]]
        series = document["dataSets"][0]["series"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ParseError(f"ECB jsondata: not an SDMX-JSON data message ({type(error).__name__}: {error})") from error
    names = [dimension["id"] for dimension in series_dims]
    rows = []
    for series_key, content in series.items():
        positions = [int(part) for part in series_key.split(":")]
        labels = {name: series_dims[i]["values"][p]["id"] for i, (name, p) in enumerate(zip(names, positions))}
        for index, observation in content.get("observations", {}).items():
            rows.append(
                {
                    "rate_date": _day(times[int(index)], "ECB jsondata"),
                    "base": labels.get("CURRENCY_DENOM"),
                    "quote": labels.get("CURRENCY"),
                    "rate": _decimal(observation[0] if observation else None),
                }
            )
    return sorted(rows, key=lambda row: row["rate_date"])


def parse_eurofxref_history(data: bytes) -> list[dict]:
    """Every published rate of the ECB's `eurofxref-hist` file (zip or CSV): EUR per currency."""
    header, lines = _eurofxref_lines(data)
    currencies = [(i, name) for i, name in enumerate(header) if i and name]
    rows = []
    for day, line in lines:
        for i, currency in currencies:
            rate = _decimal(line[i]) if i < len(line) else None
            if rate is not None:
                rows.append({"rate_date": day, "base": "EUR", "quote": currency, "rate": rate})
    return rows


@dataclass(frozen=True)
class HistoryExtract:
    """Part of the eurofxref history: the newest day it holds, and a window of one currency."""

    last_day: date | None
    days: int  # days of the window the history holds
    body: bytes  # a eurofxref-hist CSV of its own: `Date,<currency>`, the window's lines as published


def eurofxref_window(data: bytes, start: date, end: date, currency: str = "USD") -> HistoryExtract:
    """The days from `start` to `end` (inclusive) of one currency of the history, values kept as text."""
    header, lines = _eurofxref_lines(data)
    if currency not in header:
        raise ParseError(f"eurofxref history: no {currency} column ({len(header) - 1} currencies)")
    column = header.index(currency)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Date", currency])
    last_day, days = None, 0
    for day, line in lines:
        last_day = day if last_day is None or day > last_day else last_day
        if start <= day <= end:
            writer.writerow([day.isoformat(), line[column].strip() if column < len(line) else ""])
            days += 1
    return HistoryExtract(last_day, days, out.getvalue().encode())


HISTORY_FORMAT = "eurofxref-hist"


def parse_rates(format: str, body: bytes) -> list[dict]:
    """Observations of a kept rates body, by the format it came in (csvdata, jsondata or eurofxref-hist)."""
    if format == "csvdata":
        return parse_sdmx_csv(body)
    if format == "jsondata":
        return parse_sdmx_json(body)
    if format == HISTORY_FORMAT:
        return parse_eurofxref_history(body)
    raise ParseError(f"rates kept as {format!r}: not a format the ECB sends")


def _eurofxref_lines(data: bytes) -> tuple[list[str], Iterator[tuple[date, list[str]]]]:
    """The header of a `eurofxref-hist` file (zip or CSV) and its lines with their day, lazily."""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [name for name in archive.namelist() if name.endswith(".csv")]
            if not members:
                raise ParseError(f"eurofxref history: no CSV in the zip ({archive.namelist()})")
            data = archive.read(members[0])
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not header or header[0] != "Date":
        raise ParseError(f"eurofxref history: expected a 'Date' column first, got {header[:3]}")
    lines = ((_day(line[0].strip(), "eurofxref history"), line) for line in reader if line and line[0].strip())
    return header, lines


def _day(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError) as error:
        raise ParseError(f"{where}: {text!r} is not a YYYY-MM-DD day") from error


def published(observations: Iterable[dict]) -> list[dict]:
    """The observations that carry a rate (a holiday may come as an empty or NaN value)."""
    return [row for row in observations if row["rate"] is not None]


def rate_for_day(rates: pd.DataFrame, day: date, base: str = "EUR", quote: str = "USD") -> tuple[date, Decimal] | None:
    """The rate published on `day`, or else the last one published before it, with its date."""
    usable = rates[(rates["base"] == base) & (rates["quote"] == quote)]
    usable = usable[usable["rate_date"].map(lambda d: d <= day).astype(bool)] if len(usable) else usable
    if usable.empty:
        return None
    latest = usable.loc[usable["rate_date"].map(lambda d: d.toordinal()).idxmax()]
    return latest["rate_date"], latest["rate"]


# ---------------------------------------------------------------- store


def store_items(pages: Sequence[bytes], parse_float: Callable[[str], Any] = Decimal) -> list:
    """Every item of the kept pages, in order; a page that is not a JSON list is refused as a whole.

    Numbers become `Decimal` (exact prices); `parse_float=float` gives the items as plain JSON values.
    """
    items = []
    for number, page in enumerate(pages):
        try:
            found = json.loads(page, parse_float=parse_float)
        except ValueError as error:
            raise ParseError(f"store products page {number}: not valid JSON ({error})") from error
        if not isinstance(found, list):
            raise ParseError(f"store products page {number}: expected a JSON list, got {type(found).__name__}")
        items.extend(found)
    return items


@dataclass
class StoreProducts:
    """The day's items read one by one: a row per readable product, the item it comes from, and why
    each other item could not be read (by position)."""

    rows: list[dict]
    positions: list[int]
    unreadable: dict[int, list[str]]


def read_products(items: Sequence[Any]) -> StoreProducts:
    """Rows of the items that are products; an unreadable one is reported, the others are still read."""
    read = StoreProducts([], [], {})
    for position, item in enumerate(items):
        try:
            read.rows.append(product_row(item))
        except ParseError as error:
            read.unreadable[position] = [str(error)]
        else:
            read.positions.append(position)
    return read


def product_row(item: Any) -> dict:
    """One product as a row, its price exact and rounded half-even to the cent."""
    if not isinstance(item, dict):
        raise ParseError(f"unreadable product: a JSON {type(item).__name__}, not an object")
    try:
        category = item.get("category") or {}
        price = item["price"]
        if isinstance(price, bool) or not isinstance(price, (int, Decimal, str)):
            raise ValueError(f"price {price!r} is not a number")
        price_usd = to_cents(price)
        if not price_usd.is_finite():
            raise ValueError(f"price {price!r} is not a finite number")
        return {
            "id": item["id"],
            "title": item["title"],
            "slug": item.get("slug"),
            "description": item.get("description"),
            "category": category.get("name"),
            "category_id": category.get("id"),
            "price_usd": price_usd,
            "images": json.dumps(item.get("images") or [], ensure_ascii=False),
            "created_at": item.get("creationAt"),
            "updated_at": item.get("updatedAt"),
        }
    except KeyError as error:
        raise ParseError(f"unreadable product: no {error.args[0]!r}") from error
    except InvalidOperation as error:
        raise ParseError(f"unreadable product: price {item.get('price')!r} is not a number") from error
    except (ValueError, TypeError, AttributeError) as error:
        raise ParseError(f"unreadable product: {error}") from error


def product_key(item: Any, position: int) -> str:
    """How a set-aside item is named: its product id, or `#position` when it has no usable one."""
    key = item.get("id") if isinstance(item, dict) else None
    usable = isinstance(key, (int, str)) and not isinstance(key, bool) and str(key).strip()
    return str(key) if usable else f"#{position}"


def listed_ids(items: Iterable[Any]) -> set[int]:
    """The product ids the store listed, readable products or not."""
    return {
        item["id"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("id"), int) and not isinstance(item["id"], bool)
    }
