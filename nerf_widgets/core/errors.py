"""One exception hierarchy for the whole package.

Widgets catch ``NerfWidgetsError`` and show ``str(err)`` inline; anything else is a bug and is
shown with a short "internal error" line while the traceback goes to the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class NerfWidgetsError(Exception):
    """Base class: the message is written for a person, ``details`` carries machine-readable context."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ValidationError(NerfWidgetsError, ValueError):
    """Input was rejected at the boundary; nothing was written."""


class DuplicateImageError(ValidationError):
    """The project already holds an image with this content (``existing_id``); the copy is not stored."""

    def __init__(self, existing_id: str, message: str = "The project already holds this image.") -> None:
        super().__init__(message, existing_id=existing_id)
        self.existing_id = existing_id


class NotFoundError(NerfWidgetsError, KeyError):
    """A project, image, job, run or export with that id does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class StateConflictError(NerfWidgetsError):
    """The request is illegal in the current lifecycle or job state."""


class ResourceUnavailableError(NerfWidgetsError):
    """A device, memory, disk or lock needed for the work is not free."""


class CancelledError(NerfWidgetsError):
    """Work stopped because a person (or the runner) asked it to."""


def stop_if_asked(should_stop: Callable[[], bool] | None, message: str, **details: Any) -> None:
    """Raise ``CancelledError(message, **details)`` when ``should_stop`` says so: long loops ask it between steps."""
    if should_stop is not None and should_stop():
        raise CancelledError(message, **details)
