"""Hiding secrets before they reach a backend, a file, the journal or the console.

The rules are described for users in one place, ``docs/secrets.md``; this module implements
them and every path into the run goes through it (``init`` config, run and stage names,
``log``, ``set_summary`` and ``update_summary`` values). In short:

- a key *looks secret* when its name contains ``key``, ``token``, ``secret``, ``password``,
  ``passwd``, ``passphrase``, ``credential`` or ``auth`` (not in ``author``/``authority``),
  in any case;
- text directly under such a key is replaced by :data:`REDACTED`, and so is every text at any
  depth under it (mappings, lists, tuples, dataclasses), except below a key whose only match is
  a machine-learning word (``tokenizer``, ``keypoints``, ``keyframe``, ...), whose sections are
  judged key by key;
- numbers, booleans and nulls are kept everywhere, and key names are never hidden;
- a password in a URL (``scheme://user:PASSWORD@host``) is replaced in any text.

Names are judged per ``/``-separated part, so ``{"secrets": {"hf": ...}}`` and a logged
``"secrets/hf"`` are treated alike.
"""

from __future__ import annotations

import enum
import functools
import numbers
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***REDACTED***"

#: A name containing one of these (any case) looks secret. ``auth`` counts (``oauth``,
#: ``authorization``, ``authenticate``) except in ``author``/``authority``, which name people
#: and hosts, not credentials.
_SECRET_WORD = re.compile(
    r"key|token|secret|passw(?:or)?d|passphrase|credential|auth(?!or(?!i[sz]))", re.IGNORECASE
)
#: Common machine-learning words that contain a secret word but name no credential. A name
#: whose only secret words are inside these still hides its own text (the documented substring
#: promise) but not a whole section under it: ``tokenizer: {name: gpt2}`` keeps ``name``.
_HARMLESS_WORD = re.compile(
    r"tokeni[sz](?:ers?|ations?|ing|ed|es|e)?|key_?points?|key_?frames?", re.IGNORECASE
)
#: ``scheme://user:PASSWORD@host``: the password runs to the last ``@`` before the path (so an
#: unescaped ``@`` in it is hidden too), as URL parsers read it.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)[^\s/?#]*@")


class Exposure(enum.Enum):
    """How much of a value is hidden, decided by the keys above it."""

    #: Nothing hidden but URL passwords.
    CLEAR = 0
    #: Text directly under the key (or in a list under it) hidden; a mapping under it is
    #: judged key by key.
    OWN_TEXT = 1
    #: Every text at any depth hidden.
    ALL_TEXT = 2


def looks_secret(name: object) -> bool:
    """True when ``name`` contains a secret word (``key``, ``token``, ...; see the module)."""
    return isinstance(name, str) and _SECRET_WORD.search(name) is not None


def _hides_section(part: str) -> bool:
    """True when one name part hides everything under it: a secret word outside the
    harmless machine-learning words."""
    return _SECRET_WORD.search(_HARMLESS_WORD.sub("/", part)) is not None


@functools.lru_cache(maxsize=8192)
def exposure_of(name: str) -> Exposure:
    """What a key ``name`` (possibly an ``a/b`` path) hides of the value directly under it.

    Cached: ``log()`` asks this for every text value it is given, usually with the same few
    names over and over.
    """
    parts = name.split("/")
    if any(_hides_section(part) for part in parts):
        return Exposure.ALL_TEXT
    if looks_secret(parts[-1]):
        return Exposure.OWN_TEXT
    return Exposure.CLEAR


@functools.lru_cache(maxsize=8192)
def text_is_secret(name: str) -> bool:
    """True when a text value logged under the (flattened) key ``name`` must be hidden.

    Cached, like :func:`exposure_of`: ``log()`` asks this for every text value.
    """
    return exposure_of(name) is not Exposure.CLEAR


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced (``scheme://user:***@host``)."""
    if "://" not in text:  # the common case, at C speed
        return text
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def redact(data: Any, exposure: Exposure = Exposure.CLEAR) -> Any:
    """A copy of plain ``data`` (mappings, lists and tuples of scalars, as
    :func:`noether.core.trackers.run_files.to_plain` makes) with secrets hidden.

    ``exposure`` is what the keys above ``data`` hide (nothing for a whole config). Mappings
    become dicts and tuples lists. Under a secret key every leaf but a number, a boolean or
    None is replaced by :data:`REDACTED`.
    """
    if isinstance(data, Mapping):
        return {key: redact(value, _inner(exposure, key)) for key, value in data.items()}
    if isinstance(data, list | tuple):
        # items of a list are the key's own values: OWN_TEXT hides their text too
        return [redact(item, exposure) for item in data]
    if data is None or isinstance(data, bool | numbers.Number):
        return data  # a number is almost never a credential; see docs/secrets.md
    if exposure is not Exposure.CLEAR:
        return REDACTED
    if isinstance(data, str):
        return redact_text(data)
    return data


def _inner(outer: Exposure, key: object) -> Exposure:
    """The exposure of the value under ``key`` in a mapping whose own exposure is ``outer``."""
    if outer is Exposure.ALL_TEXT:
        return outer
    return exposure_of(key if isinstance(key, str) else str(key))
