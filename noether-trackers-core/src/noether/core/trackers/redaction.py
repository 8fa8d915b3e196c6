"""Hiding secret-looking values before they reach a backend, a file, the journal or the console.

A key looks secret when its name contains ``key``, ``token``, ``secret`` or ``password`` (any
case). Only text values under such keys are replaced: a number is never a credential, and
redacting ``max_tokens: 512`` would only hide useful configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***REDACTED***"
_SECRET_KEY = re.compile(r"key|token|secret|password", re.IGNORECASE)


def looks_secret(key: object) -> bool:
    """True when ``key``'s name says its value is a credential."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def redact(data: Any) -> Any:
    """Return a copy of ``data`` (mappings and lists, any depth) with secret text replaced."""
    if isinstance(data, Mapping):
        return {
            key: REDACTED if looks_secret(key) and isinstance(value, str | bytes) else redact(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact(item) for item in data]
    return data
