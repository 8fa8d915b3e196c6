"""Names as file names: run names, stage names, run ids and metric keys are data, not paths.

A backend that puts a user-given name into a path (a stage directory, a file named after the
run id, a directory a backend library derives from the run name) passes it through one of these
functions first, so that no name, whatever characters it holds (``/``, ``..``, an absolute path,
NUL, newlines, thousands of characters, any unicode), makes a file land outside the directory
the configuration names.

- :func:`safe_component` maps a name to *one* path component. A plain name (``train``,
  ``finetune-2``, ``模型``) maps to itself; any other name is percent-encoded, so the mapping is
  one-to-one and ``urllib.parse.unquote`` gives the name back (``../x`` becomes ``..%2Fx``,
  ``.`` becomes ``%2E``). A name longer than ``max_bytes`` is shortened and keeps a hash of the
  whole name.
- :func:`safe_relative_path` keeps a name that is already a harmless relative path
  (``run/stage``: nested directories, but inside) and maps any other to :func:`safe_component`.
"""

from __future__ import annotations

import hashlib

#: The longest component (in UTF-8 bytes) the functions here return. Filesystems allow 255;
#: the margin leaves room for what a backend adds around the name (``.csv``, a prefix).
MAX_COMPONENT_BYTES = 200
#: Length of the hexadecimal hash that stands for the cut part of a shortened name.
DIGEST_LENGTH = 16
#: Separates a shortened name from its hash.
_DIGEST_SEPARATOR = "~"
# Characters a plain component may not hold: the escape character itself (so that the mapping
# stays one-to-one), both path separators (Windows splits on a backslash) and control
# characters (NUL cannot be in a file name at all; newlines and the like break listings,
# shells and dashboards that show directory names).
_ENCODED = frozenset("%/\\") | {chr(code) for code in (*range(0x20), *range(0x7F, 0xA0))}


def digest(name: str, length: int = DIGEST_LENGTH) -> str:
    """A short, stable hexadecimal hash of ``name`` (the same on every machine and run)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def safe_component(name: str, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """One path component that stands for ``name``: ``name`` itself when it is plain.

    Plain means: not empty, not ``.`` or ``..``, no ``%``, ``/``, ``\\`` or control character,
    valid UTF-8 and at most ``max_bytes`` bytes long. Other names are percent-encoded
    (``%2F`` for ``/``, ``%00`` for NUL, ``%2E%2E`` for ``..``; the empty name becomes ``%``),
    and a result longer than ``max_bytes`` keeps as much of its start as fits followed by
    ``~`` and :func:`digest` of the whole name. Distinct names give distinct components.
    """
    if max_bytes < DIGEST_LENGTH + 2:
        raise ValueError(f"max_bytes must be at least {DIGEST_LENGTH + 2}; got {max_bytes}")
    if name in ("", ".", ".."):
        # a component of dots only would mean this directory or its parent
        return "%2E" * len(name) or "%"
    tokens = [_encode_character(character) for character in name]
    encoded = "".join(tokens)
    if len(encoded.encode("utf-8")) <= max_bytes:
        return encoded
    return _shortened(tokens, digest(name), max_bytes)


def is_safe_relative_path(name: str, max_bytes: int = MAX_COMPONENT_BYTES) -> bool:
    """True when joining ``name`` to a directory stays inside it and can be created as is.

    That is: not empty, at most ``max_bytes`` bytes of valid UTF-8, no NUL or backslash, no
    leading ``/`` and no ``/``-separated part ``.`` or ``..`` (``a//b`` and ``a/`` are fine:
    they stay inside).
    """
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no file system takes it
        return False
    if size == 0 or size > max_bytes or "\0" in name or "\\" in name or name.startswith("/"):
        return False
    return all(part not in (".", "..") for part in name.split("/"))


def safe_relative_path(name: str, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """``name`` when :func:`is_safe_relative_path` holds (``run/stage`` stays two directories
    deep), else :func:`safe_component` of it: one component, so it cannot leave the directory
    it is joined to."""
    if is_safe_relative_path(name, max_bytes):
        return name
    return safe_component(name, max_bytes)


def _encode_character(character: str) -> str:
    if character in _ENCODED or _is_surrogate(character):
        return "".join(f"%{byte:02X}" for byte in character.encode("utf-8", "surrogatepass"))
    return character


def _is_surrogate(character: str) -> bool:
    return 0xD800 <= ord(character) <= 0xDFFF


def _shortened(tokens: list[str], name_digest: str, max_bytes: int) -> str:
    """The encoded ``tokens`` cut to fit ``max_bytes`` with ``~digest`` appended; cut between
    tokens, so that no escape or multi-byte character is split."""
    budget = max_bytes - len(_DIGEST_SEPARATOR) - len(name_digest)
    kept: list[str] = []
    for token in tokens:
        size = len(token.encode("utf-8"))
        if size > budget:
            break
        kept.append(token)
        budget -= size
    return "".join(kept) + _DIGEST_SEPARATOR + name_digest
