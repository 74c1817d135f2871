"""Everything the `hr` group contributes to the code location, its landing place included."""

from dagster import Definitions, load_assets_from_modules

from etl_platform.defs.hr import assets
from etl_platform.defs.hr.resources import HrLandingResource
from etl_platform.defs.hr.schedules import hr_migration_job
from etl_platform.defs.hr.sensors import hr_api_writes_sensor, hr_landing_sensor
from etl_platform.lib import settings


def build_resources() -> dict:
    """The landing place: `HR_LANDING_URL` (resolved by Dagster when used) or `$ETL_HOME/landing/hr` when unset."""
    default = str(settings.etl_home() / "landing" / "hr")
    return {"hr_landing": HrLandingResource(url=settings.env_var_or("HR_LANDING_URL", default))}


defs = Definitions(
    assets=load_assets_from_modules([assets]),
    jobs=[hr_migration_job],
    sensors=[hr_landing_sensor, hr_api_writes_sensor],
    resources=build_resources(),
)
