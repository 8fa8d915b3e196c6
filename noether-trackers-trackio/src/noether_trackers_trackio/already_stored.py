"""The rows a killed delivery process's Trackio run wrote that the replacement is sent again.

A delivery process that replaces a killed one (``RunInfo.redelivery``) is sent every call from
the last one the backend's ``_flush`` made durable. Trackio's writer thread also writes on its
own, every half second, so the store may already hold some of those calls. Trackio writes
rows in the order they were logged, one row per ``log`` call: the calls sent again that the
store holds are the first ones, and each is recognised by its step and metric names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class AlreadyStored:
    """Tells, call by call, whether a call sent again is a row the store already holds.

    Built from the store's rows (step and metric names, in the order written). Only rows at or
    after the step of the first call sent again can be among the calls sent again; each stored
    row answers for one call.
    """

    def __init__(self, rows: Iterable[tuple[int, frozenset[str]]]) -> None:
        self._rows = list(rows)
        self._held: Counter[tuple[int, frozenset[str]]] | None = None

    def holds(self, step: int, names: Iterable[str]) -> bool:
        """True (and that row is used up) when the store holds the call at ``step`` logging
        ``names``; False once a call is not held, for this and every later call."""
        if self._held is None:
            self._held = Counter(row for row in self._rows if row[0] >= step)
            self._rows = []
        row = (step, frozenset(names))
        if self._held[row] > 0:
            self._held[row] -= 1
            return True
        # Rows are written in order: past the first call not held, none is.
        self._held.clear()
        return False
