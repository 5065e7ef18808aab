"""``ImageUploader``: chunked browser uploads, "add a folder from the kernel's disk", thumbnail grid.

Protocol (custom comm messages; ``js/image_uploader.js`` is the other end). Every message names a
batch key ``bid`` chosen by the browser view that started it:

    JS -> Py  {kind: "begin", bid, files: [{fid, name, size}]}    Py -> JS  {kind: "begun", bid, refused: {fid: reason}}
    JS -> Py  {kind: "chunk", bid, fid, offset} + [bytes]         Py -> JS  {kind: "ack", bid, fid, offset, received, refused?}
    JS -> Py  {kind: "commit", bid}                               Py -> JS  {kind: "done", bid, results: [{fid, ...}]}
    JS -> Py  {kind: "cancel", bid}
    JS -> Py  {kind: "folder", bid, path}                         Py -> JS  {kind: "done", bid, results: [...]}
    JS -> Py  {kind: "thumbs", ids: [...]}                        Py -> JS  {kind: "thumbs", ids: [...]} + [jpeg, ...]
    JS -> Py  {kind: "remove", id}
    any failure                                                   Py -> JS  {kind: "failed", bid, message}

Results name the file key ``fid`` they belong to (two files with the same name from two folders stay apart).
The browser gives up on a reply after ``reply_timeout_s`` seconds without any sign of life from the kernel
(a message or a progress update) and says so; a long ingest that reports progress never times out.

Chunks (``chunk_size`` bytes, 1 MiB by default) travel as binary buffers, never base64, and the
browser keeps up to 8 MiB (at most 64 chunks) in flight. Each file action is one Studio API call: ``Project.upload_images``
with ``(client name, staged path)`` pairs or the folder path, ``Project.thumbnail``, ``Project.remove_image``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.widgets.common import asset_path, error_message
from nerf_widgets.widgets.panel import PanelMixin, StudioContext
from nerf_widgets.widgets.staging import StagedBatch, begin_batch, sweep_stale

if TYPE_CHECKING:
    from nerf_widgets.studio import Project

MiB = 1024 * 1024
THUMBS_PER_MESSAGE = 32


class ImageUploader(anywidget.AnyWidget, PanelMixin):  # type: ignore[misc]
    """Upload photos/videos into ``project`` and browse its images. ``ImageUploader(project)`` works standalone."""

    _esm = asset_path("image_uploader.js")
    _css = asset_path("image_uploader.css")

    project_id = traitlets.Unicode("").tag(sync=True)
    project_name = traitlets.Unicode("").tag(sync=True)
    images = traitlets.List(traitlets.Dict()).tag(sync=True)  # grid entries, see _image_entry
    results = traitlets.List(traitlets.Dict()).tag(sync=True)  # per-file results of the last upload
    progress = traitlets.Dict().tag(sync=True)  # {done, total, name} while files are processed
    error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    chunk_size = traitlets.Int(MiB).tag(sync=True)
    max_file_bytes = traitlets.Int(0).tag(sync=True)
    reply_timeout_s = traitlets.Float(300.0).tag(sync=True)  # browser side: silence before it gives up

    def __init__(self, project: Project | None = None, *, context: StudioContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project: Project | None = None
        self._batches: dict[str, StagedBatch] = {}
        self.on_msg(self._on_message)
        self.bind(context)
        if context is None:
            self.set_project(project)

    # --- panel convention -------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        self._discard_batches()
        self.project = project
        with self.hold_sync():  # one message, so the browser never sees a half-switched project
            self.project_id = project.id if project is not None else ""
            self.project_name = project.name if project is not None else ""
            self.results, self.progress, self.error = [], {}, ""
            if project is not None:
                self.max_file_bytes = project.settings.max_file_bytes
                sweep_stale(project.studio.home)
            self.refresh()

    def refresh(self) -> None:
        try:
            self.images = [_image_entry(rec) for rec in self.project.images()] if self.project is not None else []
        except Exception as err:  # noqa: BLE001 - e.g. the project was deleted by another kernel
            self.error = error_message(err)

    def close(self) -> None:
        self._discard_batches()
        super().close()

    # --- actions (each one Studio API call) -------------------------------------------------------
    def upload(self, items: Any) -> list[dict[str, Any]]:
        """``Project.upload_images(items)`` with live progress; results become the ``results`` trait."""
        project = self._require_project()
        self.busy, self.progress = True, {"done": 0, "total": 0, "name": ""}
        try:
            results = [_result_entry(r.to_dict()) for r in project.upload_images(items, progress=self._on_progress)]
        finally:
            self.busy, self.progress = False, {}
        self.refresh()
        self.touch()
        return results

    def add_folder(self, path: str) -> list[dict[str, Any]]:
        """Ingest a folder (or one file) that is already on the kernel's disk."""
        if not isinstance(path, str) or not path.strip():
            raise ValidationError("Type the path of a folder on the kernel's machine.")
        self.results = self.upload(Path(path.strip()).expanduser())
        return self.results

    def remove(self, image_id: str) -> None:
        self._require_project().remove_image(image_id)
        self.refresh()
        self.touch()

    # --- message handling -------------------------------------------------------------------------
    def _on_message(self, _widget: Any, content: dict[str, Any], buffers: list[memoryview]) -> None:
        kind = content.get("kind") if isinstance(content, dict) else None
        handler = {"begin": self._begin, "chunk": self._chunk, "commit": self._commit, "cancel": self._cancel,
                   "folder": self._folder, "thumbs": self._thumbs, "remove": self._remove}.get(str(kind))
        bid = str(content.get("bid", "")) if isinstance(content, dict) else ""
        if handler is None:
            self.send({"kind": "failed", "bid": bid, "message": f"Unknown message kind {kind!r}."})
            return
        try:
            if kind in ("begin", "folder", "remove"):
                self.error = ""
            handler(content, buffers)
        except Exception as err:  # noqa: BLE001 - every failure is answered, never raised into the kernel
            message = error_message(err)
            self.error = message
            self._discard_batch(bid)
            self.send({"kind": "failed", "bid": bid, "message": message})

    def _begin(self, content: dict[str, Any], _buffers: list[memoryview]) -> None:
        project, bid = self._require_project(), _bid(content)
        self._discard_batch(bid)
        settings = project.settings
        batch = begin_batch(project.studio.home, content.get("files"), max_file_bytes=settings.max_file_bytes,
                            max_batch_bytes=settings.max_batch_bytes)
        self._batches[bid] = batch
        refused = {fid: f.rejected for fid, f in batch.files.items() if f.rejected}
        self.send({"kind": "begun", "bid": bid, "refused": refused})

    def _chunk(self, content: dict[str, Any], buffers: list[memoryview]) -> None:
        bid, fid, offset = _bid(content), str(content.get("fid")), content.get("offset")
        batch = self._batch(bid)
        if len(buffers) != 1 or not isinstance(offset, int):
            raise ValidationError("A chunk message must carry one binary buffer and an integer offset.")
        received = batch.append(fid, offset, buffers[0])
        reply: dict[str, Any] = {"kind": "ack", "bid": bid, "fid": fid, "offset": offset, "received": received}
        if batch.files[fid].rejected:
            reply["refused"] = batch.files[fid].rejected
        self.send(reply)

    def _commit(self, content: dict[str, Any], _buffers: list[memoryview]) -> None:
        bid = _bid(content)
        batch = self._batch(bid)
        try:
            failed = [{"fid": fid, "name": name, "status": "rejected", "reason": reason, "image_id": None}
                      for fid, name, reason in batch.incomplete()]
            ready = batch.ready_files()
            uploaded = self.upload([(name, path) for _fid, name, path in ready]) if ready else []
            results = failed + [{"fid": ready[r.pop("source")][0], **r} for r in uploaded]
        finally:
            self._discard_batch(bid)
        self.results = results
        self.send({"kind": "done", "bid": bid, "results": results})

    def _cancel(self, content: dict[str, Any], _buffers: list[memoryview]) -> None:
        self._discard_batch(_bid(content))

    def _folder(self, content: dict[str, Any], _buffers: list[memoryview]) -> None:
        results = self.add_folder(content.get("path"))  # type: ignore[arg-type]
        self.send({"kind": "done", "bid": _bid(content), "results": results})

    def _thumbs(self, content: dict[str, Any], _buffers: list[memoryview]) -> None:
        project = self._require_project()
        ids = [i for i in content.get("ids", []) if isinstance(i, str)]
        for start in range(0, len(ids), THUMBS_PER_MESSAGE):
            sent, blobs = [], []
            for image_id in ids[start:start + THUMBS_PER_MESSAGE]:
                try:
                    blobs.append(project.thumbnail(image_id))
                except (NotFoundError, ValidationError):
                    continue  # removed meanwhile: the grid drops it on the next refresh
                sent.append(image_id)
            self.send({"kind": "thumbs", "ids": sent}, blobs)

    def _remove(self, content: dict[str, Any], _buffers: list[memoryview]) -> None:
        self.remove(str(content.get("id")))

    # --- helpers ----------------------------------------------------------------------------------
    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress = {"done": done, "total": total, "name": name}

    def _require_project(self) -> Project:
        if self.project is None:
            raise ValidationError("No project is open: open or create one in the Projects tab first.")
        return self.project

    def _batch(self, bid: str) -> StagedBatch:
        batch = self._batches.get(bid)
        if batch is None:
            raise ValidationError("This upload is unknown or was already finished; start it again.")
        return batch

    def _discard_batch(self, bid: str) -> None:
        batch = self._batches.pop(bid, None)
        if batch is not None:
            batch.discard()

    def _discard_batches(self) -> None:
        for bid in list(self._batches):
            self._discard_batch(bid)


def _bid(content: dict[str, Any]) -> str:
    bid = content.get("bid")
    if not isinstance(bid, str) or not bid or len(bid) > 64:
        raise ValidationError("Malformed upload key.")
    return bid


def _image_entry(rec: Any) -> dict[str, Any]:
    """What the grid shows for one stored image (names are escaped by the front-end: textContent)."""
    return {"id": rec.id, "name": rec.original_name, "width": rec.width, "height": rec.height,
            "blurry": bool(rec.blurry), "sharpness": round(float(rec.sharpness), 1),
            "has_alpha": bool(rec.has_alpha), "format": rec.format}


def _result_entry(d: dict[str, Any]) -> dict[str, Any]:
    """A JSON-friendly per-file result: name, status (accepted/duplicate/rejected), reason, image_id."""
    return {"name": d.get("name") or d.get("original_name") or "", "status": str(d.get("status", "")),
            "reason": d.get("reason") or "", "image_id": d.get("image_id"), "source": d.get("source")}


__all__ = ["ImageUploader"]
