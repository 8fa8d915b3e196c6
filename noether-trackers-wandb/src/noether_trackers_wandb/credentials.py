"""Is there a W&B API key for the server? Asked without prompting and without the network.

wandb itself would, with no key, prompt on a terminal (blocking the run until someone answers)
or fail; checking first lets the tracker fall back to offline, or fail, with one message.
"""

from __future__ import annotations

import importlib
from typing import Any

from noether.core.trackers.plugin import shell_command


def credentials_problem(settings: Any) -> str | None:
    """None when credentials for ``settings.base_url`` are configured; otherwise what is wrong.

    Looks where wandb looks (the session, ``WANDB_API_KEY``, the identity-token file,
    ``~/.netrc``, the settings) through wandb's own lookup.
    """
    base_url = str(getattr(settings, "base_url", "the W&B server"))
    if getattr(settings, "api_key", None):
        return None
    try:
        wbauth = importlib.import_module("wandb.sdk.lib.wbauth")
        lookup = wbauth.authenticate_session
    except (ImportError, AttributeError):
        return None  # a wandb without this lookup: wandb.init reports a missing key itself
    try:
        try:
            auth = lookup(
                host=base_url, source="noether-trackers", prompt=False, update_session=False
            )
        except TypeError:
            # wandb before 0.31 always keeps a key it finds for the session, which is what
            # its own init would do with it; without a key it changes nothing
            auth = lookup(host=base_url, source="noether-trackers", prompt=False)
    except TypeError:
        return None  # a different signature: as above
    except Exception as error:  # a key in the wrong format, or conflicting credentials
        return f"the W&B credentials for {base_url} are not usable ({error})"
    if auth is None:
        return (
            f"no W&B API key is configured for {base_url} (set WANDB_API_KEY or run "
            f"`{shell_command('wandb', ['login'])}`)"
        )
    return None
