"""The environment is read in one place: definitions.py binds resource fields, resources read nothing."""

from __future__ import annotations

import re
from pathlib import Path

from dagster import EnvVar

from etl_platform.definitions import build_resources
from etl_platform.defs.commerce.resources import STORE_API_URL
from etl_platform.defs.cve.resources import NVD_API_URL
from etl_platform.lib import settings

PACKAGE = Path(__file__).parents[1] / "etl_platform"
# Where the environment may be read: the settings, and the one place that binds resources to it.
READERS = {PACKAGE / "lib" / "settings.py", PACKAGE / "definitions.py"}
READS = re.compile(r"os\.environ\.get|os\.getenv|settings\.env\(|os\.environ\[")
SECRETS = {
    ("nvd", "api_key"): "NVD_API_KEY",
    ("store", "user_password"): "STORE_USER_PASSWORD",
    ("hotmart", "client_id"): "SALES_CLIENT_ID",
    ("hotmart", "client_secret"): "SALES_CLIENT_SECRET",
}


def test_a_set_variable_is_bound_as_an_env_var_and_an_unset_one_as_the_default(monkeypatch):
    monkeypatch.setenv("NVD_API_URL", "http://nvd.example")
    monkeypatch.setenv("NVD_API_KEY", "")  # empty counts as unset

    assert settings.env_var_or("NVD_API_URL", "default") == EnvVar("NVD_API_URL")
    assert settings.env_var_or("NVD_API_KEY", None) is None


def test_secrets_are_bound_as_env_vars_so_the_ui_shows_their_name_not_their_value(etl_env, monkeypatch):
    for name in SECRETS.values():
        monkeypatch.setenv(name, "s3cret")

    resources = build_resources()

    for (key, field), name in SECRETS.items():
        value = getattr(resources[key], field)
        assert isinstance(value, EnvVar) and value.env_var_name == name, (key, field)


def test_without_variables_the_resources_take_the_documented_defaults(etl_env, monkeypatch):
    for name in ("STORE_API_URL", "STORE_CATEGORY", "SALES_START_DATE", "STORE_USER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    home = Path(etl_env["ETL_HOME"])

    resources = build_resources()

    assert resources["nvd"].api_url == NVD_API_URL and resources["nvd"].api_key is None
    assert resources["store"].api_url == STORE_API_URL and resources["store"].category == "Shoes"
    assert resources["hotmart"].start_date is None
    assert resources["storage"].base_url == str(home / "storage")
    assert resources["warehouse"].url == f"sqlite:///{home / 'warehouse.db'}"


def test_fields_given_to_build_resources_win_over_the_environment(etl_env, monkeypatch):
    monkeypatch.setenv("SALES_START_DATE", "2021-01-01")

    hotmart = build_resources(hotmart={"start_date": "2025-06-01", "attempts": 2})["hotmart"]

    assert (hotmart.start_date, hotmart.attempts) == ("2025-06-01", 2)


def test_no_module_reads_the_environment_outside_the_settings_and_the_definitions():
    # The demo launcher only points the environment at its stand-ins, then builds the definitions.
    modules = [path for path in PACKAGE.rglob("*.py") if path not in READERS and path.name != "demo.py"]

    readers = [str(path.relative_to(PACKAGE)) for path in modules if READS.search(path.read_text())]

    assert readers == [], "read it through a lib/settings function, or bind it in definitions.py"
