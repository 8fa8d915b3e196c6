"""The delivery engine: private to noether-trackers core, free to change in any release.

Training code and plugins never import from here; they use :mod:`noether.core.trackers`
(the run) and :mod:`noether.core.trackers.plugin` (the backend contract).
"""
