"""Callbacks of the reference trainer; every callback logs through ``self.tracker``."""

from noether.core.callbacks.base import CallbackBase

__all__ = ["CallbackBase"]
