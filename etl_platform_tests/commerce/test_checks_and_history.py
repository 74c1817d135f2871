"""The rate checks, the one-request history load, and days the data API does not serve."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from dagster import AssetCheckKey, AssetSelection, DagsterInstance, materialize

from etl_platform.defs.commerce.parse import parse_eurofxref_history, parse_sdmx_csv
from etl_platform.defs.commerce.partitions import lookback_window
from etl_platform.defs.ops.assets import fx_rate_history
from etl_platform.defs.commerce.checks import HAS_RATE_CHECK, PRICE_EUR_CHECK
from etl_platform.defs.commerce.keys import RAW_FX, TABLES
from etl_platform.defs.ops.keys import FX_HISTORY
from etl_platform.defs.commerce.resources import EcbResource
from etl_platform.definitions import build_resources
from etl_platform.lib.warehouse import engine_for
from etl_platform_tests.commerce.conftest import FRIDAY, fast
from etl_platform_tests.runs import check_evaluation, failure_message, materialization_metadata
from etl_platform_tests.stored import rows, table_counts

ECB_SAMPLES = Path(__file__).resolve().parents[2] / "etl_platform" / "samples" / "ecb"


def run_checks(run_day, *names: str):
    # Dagster runs no partitioned check alone; the raw rate fetch beside it leaves the tables as they are.
    checks = [AssetCheckKey(TABLES["product"], name) for name in names]
    return run_day(FRIDAY, selection=AssetSelection.checks(*checks) | AssetSelection.assets(RAW_FX))


def execute(postgres_url: str, statement: str) -> None:
    with engine_for(postgres_url).begin() as connection:
        connection.execute(sa.text(statement))


def test_the_rate_check_catches_a_wrong_conversion(run_day, postgres_url):
    run_day(FRIDAY)
    execute(postgres_url, "UPDATE product SET price_eur = price_eur + 0.01 WHERE id = 162")

    result = run_checks(run_day, PRICE_EUR_CHECK)

    failed = check_evaluation(result, "commerce/tables/product", PRICE_EUR_CHECK)
    assert not failed.passed
    assert failed.metadata["wrong_conversions"].value == 1
    assert "18.36" in failed.metadata["wrong"].value and "18.35" in failed.metadata["wrong"].value


def test_a_product_whose_rate_is_missing_fails_the_rate_presence_check(run_day, postgres_url):
    run_day(FRIDAY)
    execute(postgres_url, "DELETE FROM fx_rate WHERE rate_date = '2024-06-07'")

    result = run_checks(run_day, HAS_RATE_CHECK)

    failed = check_evaluation(result, "commerce/tables/product", HAS_RATE_CHECK)
    assert not failed.passed
    assert failed.metadata["without_rate"].value == 5


def load_history(ecb, etl_env) -> object:
    ecb_resource = fast(EcbResource, api_url=f"{ecb.root_url}/service/data", history_url=ecb.history_url)
    resources = build_resources() | {"ecb": ecb_resource}
    return materialize([fx_rate_history], resources=resources, instance=DagsterInstance.ephemeral())


def data_api_requests(ecb) -> list[dict]:
    return [r for r in ecb.requests if r["path"].startswith("/service/data")]


def test_the_history_load_keeps_the_zip_of_every_currency_in_one_request(ecb, etl_env, postgres_url, monkeypatch):
    monkeypatch.setenv("ETL_WAREHOUSE_URL", postgres_url)

    result = load_history(ecb, etl_env)

    assert result.success
    assert [r["path"] for r in ecb.requests] == ["/stats/eurofxref/eurofxref-hist.zip"]
    metadata = materialization_metadata(result, FX_HISTORY.to_user_string())
    assert (metadata["first_day"], metadata["last_day"]) == ("1999-01-04", "2025-05-09")
    assert metadata["source"] == ecb.history_url
    everything = parse_eurofxref_history(ecb.history_zip())
    assert (metadata["dagster/row_count"], metadata["currencies"]) == (
        len(everything),
        len({row["quote"] for row in everything}),
    )
    kept = Path(etl_env["ETL_HOME"]) / "storage" / "ops" / "history" / "fx_rates" / "eurofxref-hist.zip"
    assert kept.read_bytes() == ecb.history_zip()
    assert table_counts(postgres_url, ["fx_rate"]) == {}  # commerce/tables/fx_rate is its only writer


def test_a_day_the_kept_history_covers_takes_its_rates_from_it_with_no_request_to_the_ecb(
    run_day, ecb, etl_env, postgres_url
):
    load_history(ecb, etl_env)

    result = run_day(FRIDAY)

    assert result.success
    assert data_api_requests(ecb) == []
    raw = materialization_metadata(result, "commerce/raw/fx_rates")
    assert (raw["requests"], raw["format"]) == (0, "eurofxref-hist")
    stored = Path(etl_env["ETL_HOME"]) / "storage" / "commerce" / "raw" / "fx_rates" / f"{FRIDAY}.json"
    manifest = json.loads(stored.read_text())
    assert manifest["source"].endswith("ops/history/fx_rates/eurofxref-hist.zip") and manifest["requests"] == 0
    # The same rows the data API's series gives for the window: base EUR, quote USD.
    series = parse_sdmx_csv((ECB_SAMPLES / "EXR_D.USD.EUR.SP00.A_csvdata_lastN720_2025-10-28.csv").read_bytes())
    start, end = lookback_window(date.fromisoformat(FRIDAY))
    window = [r for r in series if start <= r["rate_date"] <= end]
    expected = [(r["rate_date"], r["base"], r["quote"], r["rate"]) for r in sorted(window, key=lambda r: r["rate_date"])]
    assert rows(postgres_url, "SELECT rate_date, base, quote, rate FROM fx_rate ORDER BY rate_date") == expected


def test_a_day_after_the_kept_history_ends_asks_the_data_api(run_day, ecb, etl_env):
    load_history(ecb, etl_env)  # ends 2025-05-09

    result = run_day("2025-05-12")

    assert result.success
    assert len(data_api_requests(ecb)) == 1
    assert materialization_metadata(result, "commerce/raw/fx_rates")["requests"] == 1


def test_a_day_the_data_api_does_not_serve_is_priced_from_the_loaded_history(run_day, ecb, etl_env, postgres_url):
    load_history(ecb, etl_env)

    result = run_day("2010-05-03")  # Monday; the data API stand-in serves 2023 onwards only

    assert result.success
    assert data_api_requests(ecb) == []
    metadata = materialization_metadata(result, "commerce/diff/product_changes")
    assert (metadata["rate_date"], metadata["rate_source"]) == ("2010-05-03", "the day's window")
    rate = rows(postgres_url, "SELECT rate FROM fx_rate WHERE rate_date = '2010-05-03' AND quote = 'USD'")[0][0]
    assert rows(postgres_url, "SELECT price_eur, rate_date FROM product WHERE id = 162") == [
        ((Decimal(20) / rate).quantize(Decimal("0.01")), date(2010, 5, 3))
    ]


def test_a_day_without_any_published_rate_fails_saying_where_it_looked(run_day):
    result = run_day("2010-05-03")

    assert not result.success
    message = failure_message(result)
    assert "No USD per EUR rate was published from 2010-04-19 to 2010-05-03" in message
    assert "ops/history/fx_rates" in message
