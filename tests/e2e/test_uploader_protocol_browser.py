"""js/image_uploader.js in headless Chromium against a scripted kernel end (the comm protocol of
``widgets/image_uploader.py``): results land on their own file row by file key, and a kernel that does not
answer gives a clear message instead of a spinner that never ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.lab_harness import REPO, open_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# A stand-in for anywidget's model: traits in ``state``, ``send`` records messages and lets a scripted kernel
# answer them (``window.kernel``: "silent" never answers; otherwise begin/chunk/commit are acknowledged and
# commit answers with ``window.doneResults``).
PAGE = """
async (source) => {
  const handlers = {};
  const state = { project_id: "prj_0123456789abcdef", project_name: "p", busy: false, error: "", progress: {},
                  results: [], images: [], chunk_size: 1048576, reply_timeout_s: 1 };
  window.sent = [];
  window.kernel = "answer";
  window.doneResults = [];
  const reply = (msg) => (handlers["msg:custom"] || []).forEach((fn) => fn(msg, []));
  const answer = (msg, buffers) => {
    if (window.kernel === "silent" || msg.kind === "thumbs") return;
    if (msg.kind === "begin") reply({ kind: "begun", bid: msg.bid, refused: {} });
    if (msg.kind === "chunk") reply({ kind: "ack", bid: msg.bid, fid: msg.fid, offset: msg.offset,
                                      received: msg.offset + buffers[0].byteLength });
    if (msg.kind === "commit") reply({ kind: "done", bid: msg.bid, results: window.doneResults });
  };
  const model = {
    get: (k) => state[k],
    on: (ev, fn) => (handlers[ev] = handlers[ev] || []).push(fn),
    off: () => {},
    send: (msg, _cb, buffers) => { window.sent.push(msg); setTimeout(() => answer(msg, buffers || []), 0); },
  };
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  const el = document.createElement("div");
  document.body.append(el);
  widget.render({ model, el });
}
"""


@pytest.fixture
def page() -> Iterator[Any]:
    with open_browser((900, 700)) as page:
        page.set_content("<html><body></body></html>")
        page.evaluate(PAGE, (REPO / "js" / "image_uploader.js").read_text())
        yield page


def test_results_are_matched_to_rows_by_file_key_not_name(page: Any) -> None:
    page.evaluate("""() => { window.doneResults = [
        { fid: "f1", name: "IMG_0001.jpg", status: "rejected", reason: "not an image", image_id: null },
        { fid: "f0", name: "IMG_0001.jpg", status: "accepted", reason: "", image_id: "img_0000000000000001" }]; }""")
    page.set_input_files(".nw-file-input", [  # the same name, as two folders' first photos would have
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 first folder"},
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 second folder, longer"}])
    page.wait_for_function("() => window.sent.some((m) => m.kind === 'commit')", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.nw-file[data-status]').length === 2", timeout=60_000)
    statuses = page.eval_on_selector_all(".nw-file .nw-file-status", "els => els.map((e) => e.textContent)")
    assert statuses == ["added", "rejected: not an image"]
    begin = page.evaluate("() => window.sent.find((m) => m.kind === 'begin').files")
    assert [(f["fid"], f["name"]) for f in begin] == [("f0", "IMG_0001.jpg"), ("f1", "IMG_0001.jpg")]


def test_a_silent_kernel_stops_the_upload_with_a_clear_message(page: Any) -> None:
    page.evaluate("() => { window.kernel = 'silent'; }")
    page.set_input_files(".nw-file-input", [{"name": "a.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 a"}])
    page.wait_for_function("() => document.querySelector('.nw-error').textContent.includes('No reply')",
                           timeout=60_000)
    error = page.text_content(".nw-error")
    assert error.startswith("Upload stopped: No reply from the kernel for 1 s while starting the upload.")
    assert "busy running another cell, or it was restarted" in error
    assert [m["kind"] for m in page.evaluate("() => window.sent")][-1] == "cancel"  # staging is dropped
    assert not page.is_disabled(".nw-button")  # the controls are usable again


def test_a_silent_kernel_on_add_folder_says_so(page: Any) -> None:
    page.evaluate("() => { window.kernel = 'silent'; }")
    page.fill(".nw-folder-path", "~/photos")
    page.click(".nw-folder-add")
    page.wait_for_function("() => document.querySelector('.nw-error').textContent.includes('No reply')",
                           timeout=60_000)
    assert page.text_content(".nw-error") == (
        "No reply from the kernel for 1 s while adding the folder. It may be busy running another cell, or it was "
        "restarted; try again when it is idle. The kernel may still add the folder when it gets to it.")
    assert not page.is_disabled(".nw-folder-add")
