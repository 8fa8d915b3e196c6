"""Is the W&B server reachable? A probe that never takes longer than it is allowed to.

Run before an online run starts, so that a cluster without network finds out in moments
(a refused connection, an unknown host) or at worst after the configured timeout, instead of
waiting through W&B's retries. The probe only asks whether anything answers HTTP at the
server's address, through the same proxies as the environment configures, and with what;
whether the credentials are accepted is left to W&B.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping


def server_problem(
    base_url: str, timeout: float, proxies: Mapping[str, str] | None = None
) -> str | None:
    """None when ``base_url`` answers within ``timeout`` seconds; otherwise why it did not.

    ``proxies`` (scheme to proxy URL) replaces the proxies from the environment when given.
    The probe runs in a daemon thread so that even a name lookup that hangs (which socket
    timeouts do not cover) cannot hold the caller longer than ``timeout``.
    """
    outcome: list[str | None] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_probe(base_url, timeout, proxies)),
        name="noether-wandb-probe",
        daemon=True,
    )
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"the W&B server {base_url} did not answer within {timeout:g} s"
    return outcome[0]


def _probe(base_url: str, timeout: float, proxies: Mapping[str, str] | None) -> str | None:
    handlers = [urllib.request.ProxyHandler(dict(proxies))] if proxies else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(base_url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            # Typically a proxy that cannot reach W&B (502, 504) or a server that is down
            # (503): wandb would only retry until its timeout.
            return f"the W&B server {base_url} answered HTTP {error.code} ({error.reason})"
        return None  # any other answer (401, 404, ...) means the server is there
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLError | ssl.CertificateError):
            # The connection was made; certificate stores differ between Python and W&B's
            # service, so let W&B judge TLS itself.
            return None
        if isinstance(reason, TimeoutError):
            return f"the W&B server {base_url} did not answer within {timeout:g} s"
        return f"cannot connect to the W&B server {base_url} ({reason})"
    except TimeoutError:
        return f"the W&B server {base_url} did not answer within {timeout:g} s"
    except (OSError, ValueError, http.client.HTTPException) as error:
        return f"cannot connect to the W&B server {base_url} ({type(error).__name__}: {error})"
