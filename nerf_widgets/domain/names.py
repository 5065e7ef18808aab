"""Validation of user-typed text: project names, descriptions and client file names (metadata only)."""

from __future__ import annotations

import re
import unicodedata

from nerf_widgets.core.errors import ValidationError

MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_FILE_NAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(text: str, allow_newlines: bool = False) -> bool:
    if allow_newlines:
        text = text.replace("\n", "").replace("\t", "")
    return bool(_CONTROL.search(text)) or any(unicodedata.category(c) == "Cc" for c in text)


def clean_project_name(name: object) -> str:
    """Strip surrounding blanks; refuse empty, too long or control characters. Shown escaped, any text allowed."""
    if not isinstance(name, str):
        raise ValidationError("The project name must be text.")
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise ValidationError("The project name is empty; type a name.")
    if len(name) > MAX_NAME:
        raise ValidationError(f"The project name is {len(name)} characters long; the limit is {MAX_NAME}.")
    if _has_control(name):
        raise ValidationError("The project name contains control characters (such as NUL or a line break).")
    return name


def clean_description(description: object) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ValidationError("The description must be text.")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"The description is {len(description)} characters long; the limit is {MAX_DESCRIPTION}.")
    if _has_control(description, allow_newlines=True):
        raise ValidationError("The description contains control characters (such as NUL).")
    return description


def clean_file_name(name: str) -> str:
    """Reduce a client file name to its last path component (kept as metadata, never used as a path).

    ``../../etc/passwd`` -> ``passwd``, ``C:\\x\\a.jpg`` -> ``a.jpg``; names with NUL or other control
    characters are refused (no browser sends them, so they signal a crafted request).
    """
    if _has_control(name):
        raise ValidationError("The file name contains control characters (such as NUL); it was refused.")
    base = re.split(r"[\\/]", name)[-1].strip()
    if base in ("", ".", ".."):
        raise ValidationError(f"The file name {name!r} has no usable last part.")
    return base[:MAX_FILE_NAME]


__all__ = ["clean_description", "clean_file_name", "clean_project_name"]
