"""Opaque ids: a short type prefix and random hex, never derived from user input."""

from __future__ import annotations

import re
import secrets

from nerf_widgets.core.errors import ValidationError

_ID_RE = re.compile(r"^[a-z]{2,4}_[0-9a-f]{16}$")


def new_id(prefix: str) -> str:
    """Return e.g. ``prj_3f9a0c1d2e4b5a69``; the prefix says what kind of record it names."""
    if not re.fullmatch(r"[a-z]{2,4}", prefix):
        raise ValueError(f"bad id prefix {prefix!r}")
    return f"{prefix}_{secrets.token_hex(8)}"


def validate_id(value: str, prefix: str | None = None) -> str:
    """Check that ``value`` is an id this package made (so it is safe inside a path)."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ValidationError(f"{value!r} is not a valid id")
    if prefix is not None and not value.startswith(prefix + "_"):
        raise ValidationError(f"{value!r} is not a {prefix} id")
    return value
