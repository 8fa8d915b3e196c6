"""Warning once per key: a value skipped at every step must not flood the log."""

from __future__ import annotations

import logging
from collections.abc import Hashable

logger = logging.getLogger("noether.trackers")


class WarnOnce:
    """Logs a warning the first time it is called with a key, and never again for that key."""

    def __init__(self) -> None:
        self._seen: set[Hashable] = set()

    def __call__(self, key: Hashable, message: str) -> bool:
        """Log ``message`` if ``key`` is new; True when it was logged."""
        if key in self._seen:
            return False
        self._seen.add(key)
        logger.warning(message)
        return True
