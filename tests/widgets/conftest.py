"""Widget fixtures: widgets talk over a recording comm, so tests see every message a browser would get.

Only the kernel transport is replaced (there is no kernel in a test); store, files and ipywidgets'
own message dispatch are the real ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import numpy as np
import pytest
from comm.base_comm import BaseComm
from PIL import Image


class RecordingComm(BaseComm):
    """A comm whose outgoing messages are kept in ``sent`` instead of going to a kernel."""

    def __init__(self, **kwargs: Any) -> None:
        self.sent: list[tuple[dict[str, Any], list[bytes]]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any) -> None:
        self.sent.append((data or {}, [bytes(b) for b in buffers or []]))

    def custom(self) -> list[tuple[dict[str, Any], list[bytes]]]:
        """Custom messages (``widget.send``) in order, as ``(content, buffers)``."""
        return [(d["content"], b) for d, b in self.sent if isinstance(d, dict) and d.get("method") == "custom"]

    def receive(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        """Deliver a message from the browser through ipywidgets' real dispatch."""
        msg = {"content": {"data": {"method": "custom", "content": content}}, "buffers": [memoryview(b) for b in buffers or []]}
        self.handle_msg(msg)


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))


def image_bytes(seed: int, fmt: str = "PNG", size: tuple[int, int] = (64, 48), alpha: bool = False) -> bytes:
    """A small sharp random image (random noise is never flagged blurry)."""
    rng = np.random.default_rng(seed)
    channels = 4 if alpha else 3
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    if alpha:
        pixels[: size[1] // 2, :, 3] = 0
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_image() -> Any:
    """``make_image(seed, fmt="PNG", size=(w, h), alpha=False) -> bytes``."""
    return image_bytes


@pytest.fixture
def photo_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"shot_{i}.png").write_bytes(image_bytes(i))
    (folder / "notes.txt").write_text("not an image")
    yield folder
