"""The plugin API's version, and whether a plugin written for another one can be served.

``PLUGIN_API`` is ``"MAJOR.MINOR"``. Within one major version a minor release only adds to
the plugin API: new optional backend methods with a default, new :class:`RunInfo` fields with
a default, new keyword arguments passed only to backend methods that accept them, new names in
:mod:`noether.core.trackers.plugin`. It never removes or changes a documented name. A new major
version may; it comes with a new major version of ``noether-trackers-core``.

A backend states the version it was written for in its ``plugin_api`` class attribute. This
core serves a backend written for the same major version and the same or an older minor one.
"""

from __future__ import annotations

#: The version of the plugin API this core provides (``"MAJOR.MINOR"``).
PLUGIN_API = "1.0"

#: What a backend that does not state its ``plugin_api`` was written for: the plugin API as it
#: was before it had a version.
UNSTATED_PLUGIN_API = "1.0"


def parse_plugin_api(version: str) -> tuple[int, int]:
    """``"1.2"`` as ``(1, 2)``; ValueError naming ``version`` when it is not ``MAJOR.MINOR``."""
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"plugin_api {version!r} is not 'MAJOR.MINOR' (e.g. {PLUGIN_API!r})")
    return int(parts[0]), int(parts[1])


def plugin_api_problem(declared: str | None, provided: str = PLUGIN_API) -> str | None:
    """Why a backend written for plugin API ``declared`` cannot be served by a core that
    provides ``provided``; None when it can (or when it does not say: ``declared`` None)."""
    if declared is None:
        return None
    try:
        wanted = parse_plugin_api(declared)
    except ValueError as error:
        return str(error)
    have = parse_plugin_api(provided)
    if wanted[0] != have[0]:
        return (
            f"written for plugin API {declared}; this noether-trackers-core provides "
            f"{provided} (another major version): install a version of the plugin made for "
            f"plugin API {have[0]}.x"
        )
    if wanted[1] > have[1]:
        return (
            f"written for plugin API {declared}; this noether-trackers-core provides only "
            f"{provided}: upgrade noether-trackers-core"
        )
    return None
