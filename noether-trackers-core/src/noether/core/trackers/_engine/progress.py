"""How far a delivery process got, in memory the training process reads even after it died.

A :class:`ProgressBoard` is a small file mapped into both processes (a temporary file, deleted
at once, shared by descriptor). The delivery process writes two kinds of count, each the number
of the run's ``log``/summary calls of this training process, in order:

- *kept*: the calls it has handed to the OS in the journal (or, without a working journal, taken
  from the training process): the training process forgets them, it keeps the rest to give a
  replacement delivery process;
- *durable*, per backend: the calls the backend took up to its last ``_flush``: a replacement
  gives the backend every later call again.

Plain memory writes, no system call: what the board says when a process is killed is exactly
what it had done.
"""

from __future__ import annotations

import mmap
import os
import tempfile

_SLOT = 8  # one signed 64-bit count per slot


class ProgressBoard:
    """Counts shared between a training process and its delivery process."""

    def __init__(self, backends: int, descriptor: int | None = None) -> None:
        """A new board for ``backends`` backends, or the one open at ``descriptor``."""
        self.size = (1 + backends) * _SLOT
        if descriptor is None:
            with tempfile.TemporaryFile() as handle:  # deleted now; the descriptor keeps it
                descriptor = os.dup(handle.fileno())
            os.ftruncate(descriptor, self.size)
        self.descriptor = descriptor
        self._map = mmap.mmap(descriptor, self.size)
        self._counts = memoryview(self._map).cast("q")

    @property
    def kept(self) -> int:
        """Calls the journal holds (or no journal needs to hold)."""
        return int(self._counts[0])

    @kept.setter
    def kept(self, count: int) -> None:
        self._counts[0] = count

    def durable(self, backend: int) -> int:
        """Calls backend number ``backend`` took up to its last flush."""
        return int(self._counts[1 + backend])

    def set_durable(self, backend: int, count: int) -> None:
        """Backend number ``backend`` flushed after taking ``count`` calls."""
        self._counts[1 + backend] = count

    def close(self) -> None:
        """Unmap the board and close its descriptor."""
        self._counts.release()
        self._map.close()
        os.close(self.descriptor)
