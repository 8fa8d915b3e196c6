"""W&B's run id and media keys from a run's names: data that W&B turns into file names.

W&B names the run's directory (``offline-run-<time>-<id>``) and history file
(``run-<id>.wandb``) after the run id and refuses ids with some characters; it names the file
of a logged image or table after its key (``media/images/<key>_<step>_<hash>.png``) and a
table's artifact ``run-<id>-<key>`` (at most 128 characters). A run id and a key are data and
may hold anything, so one W&B would refuse, or that could not be a file name, is mapped to one
W&B takes. Each mapping depends on its input alone: a restarted job with the same run id
resumes the same W&B run, and a key maps to the same key at every step.
"""

from __future__ import annotations

import re

from noether.core.trackers.plugin import digest, is_safe_relative_path, safe_component

#: Characters wandb refuses in a run id (its own check, and its documentation's list).
RESERVED_CHARACTERS = frozenset(":;,#?/'\\%")
#: The longest run id (in UTF-8 bytes) passed to W&B unchanged: W&B's own limit on names such
#: as tags and job types, and short enough to leave room for keys in the 128 characters of a
#: table's artifact name ``run-<id>-<key>``.
MAX_ID_BYTES = 64
#: W&B's limit on an artifact name.
MAX_ARTIFACT_NAME = 128
#: The longest media key (in UTF-8 bytes) passed to W&B unchanged, so that with W&B's
#: ``_<step>_<hash>.table.json`` a file name stays well within 255 bytes.
MAX_MEDIA_KEY_BYTES = 100
#: How much of an unusable id is kept, readable, in front of its hash.
_KEPT_CHARACTERS = 40
#: What wandb removes from an artifact name (``wandb.sdk.artifacts._internal_artifact``; a
#: name it changes gets a 7-character suffix), and what a mapped run id leaves out.
NOT_IN_ARTIFACT_NAMES = re.compile(r"[^a-zA-Z0-9_\-.]+")
_ARTIFACT_SUFFIX = 7


def is_valid_wandb_run_id(run_id: str) -> bool:
    """True when W&B takes ``run_id`` as it is and it can name W&B's files.

    That is: not empty, no leading or trailing whitespace, none of :data:`RESERVED_CHARACTERS`,
    only printable characters, valid UTF-8 of at most :data:`MAX_ID_BYTES` bytes.
    """
    try:
        size = len(run_id.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return (
        0 < size <= MAX_ID_BYTES
        and run_id == run_id.strip()
        and not any(c in RESERVED_CHARACTERS or not c.isprintable() for c in run_id)
    )


def wandb_run_id(run_id: str) -> str:
    """The W&B run id for the run id ``run_id``: ``run_id`` itself when
    :func:`is_valid_wandb_run_id`, else e.g. ``x-d6b96a97d147daaa`` for ``../x`` (its letters,
    digits, ``_``, ``.`` and ``-``, then ``-`` and a hash of the whole id)."""
    if is_valid_wandb_run_id(run_id):
        return run_id
    readable = NOT_IN_ARTIFACT_NAMES.sub("_", run_id)[:_KEPT_CHARACTERS].strip("_.-")
    return f"{readable}-{digest(run_id)}" if readable else digest(run_id)


def table_artifact_prefix(wandb_id: str) -> str:
    """How the names of the artifacts wandb makes for the tables of run ``wandb_id`` begin.

    wandb names them ``run-<id>-<key>``, but drops every character an artifact name cannot
    hold from a name that has one (a ``~`` in the id, a ``/`` in the key) and appends a hash;
    dropping the same characters here gives the prefix in both cases.
    """
    return NOT_IN_ARTIFACT_NAMES.sub("", f"run-{wandb_id}-")


def media_key(key: str, wandb_id: str) -> str:
    """The key to log an image or table under in run ``wandb_id``: ``key`` itself where W&B
    can make files and an artifact of it.

    ``key`` is kept when it is a relative path that stays inside (``val/samples``; see
    :func:`~noether.core.trackers.safe_names.is_safe_relative_path`) and short enough for
    file names and the table artifact's name; any other key becomes one percent-encoded name
    (``../x`` becomes ``..%2Fx``; a long one is shortened and keeps a hash).
    """
    budget = min(MAX_MEDIA_KEY_BYTES, _artifact_budget(wandb_id))
    if is_safe_relative_path(key, budget) and key.isprintable():
        return key
    return safe_component(key, budget)


def _artifact_budget(wandb_id: str) -> int:
    """The longest key whose table artifact name W&B still takes (at least 18 bytes: W&B ids
    passed unchanged are at most 64 bytes, mapped ones shorter)."""
    return MAX_ARTIFACT_NAME - len(table_artifact_prefix(wandb_id)) - _ARTIFACT_SUFFIX
