"""Storing the run summary where Trackio shows per-run values: in the run's config.

Trackio has no run summary (W&B's ``run.summary`` has no counterpart); per run, its dashboard
shows the config, in the run page's Configuration block and in the run comparer. The summary
goes there as one nested entry, ``summary: {loss/min: 0.1, loss/last: 0.2, _status: ...}``;
nested so that the dashboard's "group by" list, which offers scalar config keys, is not
flooded with metrics.

Trackio writes a run's config once, with the run's first logged row, and has no call to change
it afterwards. So:

- local SQLite store (the default) and the run has rows: once ``finish()`` has flushed
  everything, the run's config row is rewritten in place under Trackio's own lock for the
  project database, adding nothing else;
- otherwise (a run that logged nothing, a Space, JSONL storage on a network filesystem): the
  config is sent again through the run, with a row of no metrics at the run's last step;
  Trackio replaces the stored config with it wherever the run's data goes.
"""

from __future__ import annotations

import json
from typing import Any


def is_local_sqlite(run: Any) -> bool:
    """True when ``run`` (a ``trackio.Run``) writes straight into the local SQLite store."""
    return bool(getattr(run, "_is_local", False)) and getattr(run, "_storage_mode", "") == "sqlite"


def send_with_run(run: Any, key: str, summary: dict[str, Any], step: int) -> None:
    """Queue ``summary`` under ``key`` in the run's config, with an empty row at ``step``."""
    run.config[key] = summary
    # Trackio attaches the config to the first row only; this makes it attach it once more.
    run._config_logged = False
    run.log({}, step=step)


def rewrite_config(run: Any, key: str, summary: dict[str, Any]) -> bool:
    """Put ``summary`` under ``key`` in the stored config of a finished local run.

    Returns False when the run has no stored config row to rewrite.
    """
    import trackio.utils
    from trackio.sqlite_storage import SQLiteStorage

    utils: Any = trackio.utils  # its helpers carry no annotations
    run.config[key] = summary
    db_path = SQLiteStorage.get_project_db_path(run.project)
    if not db_path.exists():
        return False
    # The same encoding Trackio's bulk_log uses for the config column.
    payload = json.dumps(
        utils.serialize_values(utils.to_json_safe(run.config)), separators=(",", ":")
    )
    with (
        SQLiteStorage._get_process_lock(run.project),
        SQLiteStorage._get_connection(db_path) as connection,
    ):
        cursor = connection.execute(
            "UPDATE configs SET config = ? WHERE run_id = ?", (payload.encode(), run.id)
        )
        return cursor.rowcount > 0
