"""The diff vocabulary every domain shares: what a key of a run is against what the warehouse holds.

- new: a key the warehouse does not hold;
- changed: a stored key whose incoming version or content differs;
- unchanged: a stored key sent again as stored;
- superseded: the incoming version is older than the stored one (the stored one stays);
- removed: stored, no longer sent (only where a domain asks);
- quarantined: no longer among the rows, but still listed at the source: set aside by
  `lib/quarantine.py`, neither loaded nor removed.

A tables asset loads the keys its diff says are LOADABLE, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from etl_platform.lib.schema_types import UTC_NS

NEW = "new"
CHANGED = "changed"
UNCHANGED = "unchanged"
SUPERSEDED = "superseded"
REMOVED = "removed"
QUARANTINED = "quarantined"

LOADABLE = (NEW, CHANGED)


def change_kinds(*extra: str) -> list[str]:
    """The kinds a domain's diff holds, for its Pandera `isin`: new, changed, unchanged, then `extra`."""
    return [NEW, CHANGED, UNCHANGED, *extra]


def classify(stored: Sequence[bool], same: Sequence[bool], older: Sequence[bool] | None = None) -> np.ndarray:
    """The change of each key: new where not `stored`, else superseded where the incoming version is
    `older` than the stored one, unchanged where it is the `same`, changed otherwise."""
    stored = np.asarray(stored, dtype=bool)
    older = np.zeros(len(stored), dtype=bool) if older is None else np.asarray(older, dtype=bool)
    return np.select(
        [~stored, older, np.asarray(same, dtype=bool)], [NEW, SUPERSEDED, UNCHANGED], default=CHANGED
    ).astype(object)


def unsent(still_listed: bool) -> str:
    """The change of a stored key the source did not send: quarantined while the source still lists it, else removed."""
    return QUARANTINED if still_listed else REMOVED


def same_values(stored: pd.Series, incoming: pd.Series) -> np.ndarray:
    """Row by row, whether the stored value (as the database driver returns it) equals the incoming
    one, two nulls being equal, as the warehouse's `IS DISTINCT FROM` compares them: 49 and 49.00
    are the same, the text "1234" and the integer 1234 are not."""
    if isinstance(incoming.dtype, pd.DatetimeTZDtype) and pd.api.types.infer_dtype(stored, skipna=True) in (
        "datetime",
        "datetime64",
        "empty",
    ):
        # SQLite returns naive date-times: the warehouse writes them in UTC. Compared as integers
        # (NaT equals NaT): boxing 200,000 timestamps took seconds.
        stored = pd.to_datetime(stored, utc=True, cache=False).astype(UTC_NS)
        return stored.array.asi8 == incoming.astype(UTC_NS).array.asi8
    return _plain(stored) == _plain(incoming)


def _plain(values: pd.Series) -> np.ndarray:
    """The values as Python objects, every kind of null as None: two nulls compare equal (NaN, NA would not)."""
    plain = values.to_numpy(dtype=object, copy=True)
    plain[pd.isna(values).to_numpy()] = None
    return plain


def change_counts(change: pd.Series, kinds: Sequence[str]) -> dict[str, int]:
    """`changes/<kind>` of a diff, for every kind of the domain (0 when none), for its metadata."""
    counts = change.value_counts()
    return {f"changes/{kind}": int(counts.get(kind, 0)) for kind in kinds}
