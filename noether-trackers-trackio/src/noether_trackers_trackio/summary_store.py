"""Storing the run summary where Trackio shows per-run values: in the run's config.

Trackio has no run summary (W&B's ``run.summary`` has no counterpart); per run, its dashboard
shows the config, in the run page's Configuration block and in the run comparer. The summary
goes there as one nested entry, ``summary: {loss/min: 0.1, loss/last: 0.2, _status: ...}``;
nested so that the dashboard's "group by" list, which offers scalar config keys, is not
flooded with metrics.

Trackio writes a run's config once, with the run's first logged row, and has no public call to
change it afterwards. So:

- a run that logged nothing: the summary goes into ``run.config`` and a row of no metrics
  carries it (public API only);
- local SQLite store (the default) and the run has rows: once ``finish()`` has flushed
  everything, the run's config row is rewritten in place under Trackio's own lock for the
  project database, adding nothing else, and read back through ``trackio.Api``;
- otherwise (a Space, a server, JSONL storage on a network filesystem): the run is told to
  send its config again, with a row of no metrics at the run's last step; Trackio replaces
  the stored config with it wherever the run's data goes.

A Trackio whose internals changed gets the last way, then a check of the local store (and
an in-place rewrite where that is still possible) for a run that may have gone there.

The Trackio internals involved are reached through :mod:`noether_trackers_trackio.compat`,
which degrades with one warning when a Trackio release changes them.
"""

from __future__ import annotations

import logging
from typing import Any

from noether_trackers_trackio import compat

logger = logging.getLogger("noether.trackers.trackio")


def send_with_run(
    run: Any, key: str, summary: dict[str, Any], step: int, *, logged_rows: bool
) -> bool:
    """Queue ``summary`` under ``key`` in the run's config, with an empty row at ``step``.

    ``logged_rows``: whether the run already sent rows (and with the first one its config).
    False when the summary could not be sent (see :func:`compat.reattach_config`).
    """
    run.config[key] = summary
    if logged_rows and not compat.reattach_config(run):
        return False  # the config would not travel with the row: nothing to gain from the row
    run.log({}, step=step)
    return True


def record_locally(
    rewrite: compat.ConfigRewriter | None,
    run: Any,
    key: str,
    summary: dict[str, Any],
    *,
    sent: bool,
    known_local: bool,
) -> None:
    """Make sure a finished run that writes (or may write) to the local SQLite store has
    ``summary`` under ``key`` in its stored config, checked through Trackio's public API.

    ``rewrite``: :func:`compat.config_rewriter`'s (None: this Trackio cannot rewrite a stored
    config). ``sent``: the summary went with the run (:func:`send_with_run`); then it is
    rewritten only if it did not arrive. ``known_local``: the run is known to write to the
    local store (else one not found there is taken as logged elsewhere).
    """
    if sent:
        stored = compat.stored_config(run.project, run.id)
        if stored is None or _holds(stored.get(key), summary):
            return
        if rewrite is None:
            logger.warning(
                "Trackio run %r ended too soon after its first row for the summary sent with "
                "it to be stored, and Trackio %s cannot rewrite a stored config (see the "
                "warning above); summary not recorded",
                run.name,
                compat.trackio_version(),
            )
            return
    if rewrite is None:
        return  # why was warned about already
    run.config[key] = summary
    if not compat.rewrite_stored_config(rewrite, run, run.config):
        if known_local:
            logger.warning("Trackio run %r has no stored config; summary not recorded", run.name)
        return
    stored = compat.stored_config(run.project, run.id)
    if stored is not None and not _holds(stored.get(key), summary):
        compat.degraded(
            "where it stores a run's config (the configs table)",
            "the run summary is not recorded for local runs that logged rows",
        )


def _holds(stored: Any, summary: dict[str, Any]) -> bool:
    # Values may come back re-encoded (NaN as "NaN"); the keys and the status tell enough.
    return (
        isinstance(stored, dict)
        and set(stored) == set(summary)
        and stored.get("_status") == summary.get("_status")
    )
