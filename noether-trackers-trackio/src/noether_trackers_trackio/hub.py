"""Asking, within a bounded time, whether the Hugging Face Hub answers at all.

Trackio talks to the Hub through huggingface_hub, whose HTTP client has no timeout: with a
``space_id`` (or an HF token, for which ``trackio.init`` looks up the user name even for local
runs), a Hub that drops packets blocks ``trackio.init`` for many minutes. One cheap request
with a deadline tells beforehand whether that can happen. The request runs on a thread of its
own so that even a hanging name lookup cannot hold up the caller past the deadline.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

#: The probed path: answers quickly (401 without a token) and is what Trackio calls first.
PROBE_PATH = "/api/whoami-v2"
#: Extra time given to the probe thread past the socket timeout, so that a request that times
#: out on its own is seen as such (and its thread has ended) rather than abandoned.
JOIN_GRACE = 0.25
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class HubStatus:
    """The outcome of one probe."""

    endpoint: str
    reachable: bool
    #: True when the Hub did not answer in time (as opposed to refusing at once).
    timed_out: bool
    #: Why it is not reachable, for messages ("" when it is).
    reason: str


def hub_endpoint() -> str:
    """The Hub URL huggingface_hub uses (``$HF_ENDPOINT`` as set now, else its default)."""
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    return endpoint.rstrip("/")


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def has_token() -> bool:
    """True when huggingface_hub would send a token (``HF_TOKEN`` or a saved login)."""
    from huggingface_hub import get_token

    return get_token() is not None


class HubProbe:
    """One request to the Hub with a deadline; :meth:`check` waits at most ``timeout`` (plus
    :data:`JOIN_GRACE`) and :meth:`join` collects the thread later."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._result: HubStatus | None = None
        self._thread = threading.Thread(
            target=self._request, name="noether-trackers-trackio:hub-probe", daemon=True
        )

    def check(self) -> HubStatus:
        """Send the request and return what came back, or a timeout."""
        self._thread.start()
        self._thread.join(self.timeout + JOIN_GRACE)
        if self._result is not None:
            return self._result
        return HubStatus(self.endpoint, False, True, f"no answer within {self.timeout:g}s")

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the probe thread; True once it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _request(self) -> None:
        request = urllib.request.Request(self.endpoint + PROBE_PATH, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except urllib.error.HTTPError:
            pass  # any HTTP status means the Hub is there
        except TimeoutError:
            self._result = self._failed(True, f"no answer within {self.timeout:g}s")
            return
        except urllib.error.URLError as error:
            timed_out = isinstance(error.reason, TimeoutError)
            self._result = self._failed(timed_out, _describe(error.reason))
            return
        except (OSError, ValueError) as error:
            self._result = self._failed(False, _describe(error))
            return
        self._result = HubStatus(self.endpoint, True, False, "")

    def _failed(self, timed_out: bool, reason: str) -> HubStatus:
        return HubStatus(self.endpoint, False, timed_out, reason)


def _describe(error: object) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
