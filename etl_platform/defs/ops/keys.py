"""Asset keys of the `ops` group (`[ops, layer, entity]`), named once for every module that refers to them."""

from dagster import AssetKey

GROUP = "ops"
RETENTION_KEY = AssetKey([GROUP, "retention", "raw_files"])
BACKUP_KEY = AssetKey([GROUP, "backup", "hr_tables"])
FX_HISTORY = AssetKey([GROUP, "history", "fx_rates"])
# The ECB's history file as kept under FX_HISTORY's folder; commerce/raw/fx_rates reads it.
FX_HISTORY_FILE = "eurofxref-hist.zip"
