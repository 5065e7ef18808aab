"""ImageUploader: the chunk protocol driven with real buffers, checked against real files and DB rows."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from nerf_widgets.studio import Studio
from nerf_widgets.widgets import ImageUploader

XSS = "<img src=x onerror=alert(1)>.png"
CHUNK = 1000  # bytes; small so every test file spans several chunks


def send_file(uploader: ImageUploader, bid: str, fid: str, data: bytes, chunk: int = CHUNK) -> None:
    for offset in range(0, len(data), chunk):
        uploader.comm.receive({"kind": "chunk", "bid": bid, "fid": fid, "offset": offset}, [data[offset:offset + chunk]])


def replies(uploader: ImageUploader, kind: str) -> list[dict[str, Any]]:
    return [c for c, _b in uploader.comm.custom() if c.get("kind") == kind]


def staged_files(home: Path) -> list[Path]:
    return [p for p in (home / "staging").rglob("*") if p.is_file()] if (home / "staging").exists() else []


def test_chunked_upload_stores_files_and_reports_per_file(make_image: Any, studio: Studio, project: Any) -> None:
    uploader = ImageUploader(project)
    files = {"a": ("first.png", make_image(1, size=(80, 60))), "b": (XSS, make_image(2, alpha=True))}
    entries = [{"fid": fid, "name": name, "size": len(data)} for fid, (name, data) in files.items()]
    uploader.comm.receive({"kind": "begin", "bid": "b1", "files": entries})
    assert replies(uploader, "begun") == [{"kind": "begun", "bid": "b1", "refused": {}}]

    send_file(uploader, "b1", "a", files["a"][1])
    staged = staged_files(studio.home)
    assert {p.name for p in staged} == {"0.part", "1.part"}  # names from positions, never the client's
    assert (studio.home / "staging").resolve() in staged[0].parents
    assert sorted(p.stat().st_size for p in staged) == [0, len(files["a"][1])]
    acks = replies(uploader, "ack")
    assert len(acks) > 1 and acks[-1]["received"] == len(files["a"][1])

    send_file(uploader, "b1", "b", files["b"][1])
    uploader.comm.receive({"kind": "commit", "bid": "b1"})
    (done,) = replies(uploader, "done")
    assert [(r["name"], r["status"]) for r in done["results"]] == [("first.png", "accepted"), (XSS, "accepted")]
    assert staged_files(studio.home) == [] and list((studio.home / "staging").iterdir()) == []

    stored = project.images()
    assert [r.original_name for r in stored] == ["first.png", XSS]
    assert stored[1].has_alpha and project.path("images", stored[1].working_file).is_file()
    assert [i["name"] for i in uploader.images] == ["first.png", XSS]
    assert project.state == "ImagesUploaded"


def test_out_of_order_chunk_rejects_that_file_only(make_image: Any, project: Any) -> None:
    uploader = ImageUploader(project)
    good, bad = make_image(3), make_image(4)
    uploader.comm.receive({"kind": "begin", "bid": "b", "files": [
        {"fid": "g", "name": "good.png", "size": len(good)}, {"fid": "x", "name": "bad.png", "size": len(bad)}]})
    send_file(uploader, "b", "g", good)
    uploader.comm.receive({"kind": "chunk", "bid": "b", "fid": "x", "offset": CHUNK}, [bad[CHUNK:2 * CHUNK]])
    assert "transfer broke off" in replies(uploader, "ack")[-1]["refused"]
    uploader.comm.receive({"kind": "commit", "bid": "b"})
    results = {r["name"]: r for r in replies(uploader, "done")[0]["results"]}
    assert results["good.png"]["status"] == "accepted"
    assert results["bad.png"]["status"] == "rejected" and "transfer broke off" in results["bad.png"]["reason"]
    assert [r.original_name for r in project.images()] == ["good.png"]


def test_incomplete_transfer_is_rejected_and_nothing_stored(make_image: Any, studio: Studio, project: Any) -> None:
    uploader = ImageUploader(project)
    data = make_image(5)
    uploader.comm.receive({"kind": "begin", "bid": "b", "files": [{"fid": "f", "name": "cut.png", "size": len(data)}]})
    uploader.comm.receive({"kind": "chunk", "bid": "b", "fid": "f", "offset": 0}, [data[:CHUNK]])
    uploader.comm.receive({"kind": "commit", "bid": "b"})
    (result,) = replies(uploader, "done")[0]["results"]
    assert result["status"] == "rejected" and f"only {CHUNK} of {len(data)} bytes" in result["reason"]
    assert project.images() == [] and staged_files(studio.home) == []
    assert project.state == "Created"


def test_oversize_file_refused_before_transfer(home: Path) -> None:
    studio = Studio(home, max_file_bytes=2000)
    project = studio.create_project("limits")
    uploader = ImageUploader(project)
    assert uploader.max_file_bytes == 2000
    uploader.comm.receive({"kind": "begin", "bid": "b", "files": [{"fid": "f", "name": "big.png", "size": 5000}]})
    (begun,) = replies(uploader, "begun")
    assert "limit per file is" in begun["refused"]["f"]
    uploader.comm.receive({"kind": "commit", "bid": "b"})
    assert replies(uploader, "done")[0]["results"][0]["status"] == "rejected"
    assert project.images() == []


def test_cancel_and_project_switch_remove_staging(make_image: Any, studio: Studio, project: Any) -> None:
    uploader = ImageUploader(project)
    data = make_image(6)
    for bid in ("one", "two"):
        uploader.comm.receive({"kind": "begin", "bid": bid, "files": [{"fid": "f", "name": "a.png", "size": len(data)}]})
        uploader.comm.receive({"kind": "chunk", "bid": bid, "fid": "f", "offset": 0}, [data[:CHUNK]])
    assert len(staged_files(studio.home)) == 2
    uploader.comm.receive({"kind": "cancel", "bid": "one"})
    assert len(staged_files(studio.home)) == 1
    uploader.set_project(None)
    assert staged_files(studio.home) == [] and uploader.project_id == "" and uploader.images == []


def test_thumbnails_travel_as_binary_jpeg(make_image: Any, project: Any) -> None:
    project.upload_images([("a.png", make_image(7, size=(640, 480))), ("b.png", make_image(8))])
    uploader = ImageUploader(project)
    ids = [i["id"] for i in uploader.images]
    uploader.comm.receive({"kind": "thumbs", "ids": [*ids, "img_0000000000000000", "../../etc/passwd"]})
    ((content, buffers),) = [(c, b) for c, b in uploader.comm.custom() if c["kind"] == "thumbs"]
    assert content["ids"] == ids and len(buffers) == 2
    first = Image.open(io.BytesIO(buffers[0]))
    assert first.format == "JPEG" and max(first.size) == 256


def test_remove_and_duplicate(make_image: Any, project: Any) -> None:
    uploader = ImageUploader(project)
    uploader.upload([("a.png", make_image(9)), ("b.png", make_image(10))])
    results = uploader.upload([("again.png", make_image(9))])
    assert results[0]["status"] == "duplicate" and results[0]["reason"]
    uploader.comm.receive({"kind": "remove", "id": uploader.images[0]["id"]})
    assert [i["name"] for i in uploader.images] == ["b.png"]
    assert [r.original_name for r in project.images()] == ["b.png"]


def test_folder_from_kernel_disk(project: Any, photo_folder: Path) -> None:
    uploader = ImageUploader(project)
    uploader.comm.receive({"kind": "folder", "bid": "f1", "path": str(photo_folder)})
    (done,) = replies(uploader, "done")
    statuses = {r["name"]: r["status"] for r in done["results"]}
    assert statuses == {"notes.txt": "rejected", "shot_0.png": "accepted", "shot_1.png": "accepted",
                        "shot_2.png": "accepted"}
    assert uploader.results == done["results"] and len(uploader.images) == 3
    assert uploader.progress == {} and not uploader.busy


@pytest.mark.parametrize("message, expected", [
    ({"kind": "folder", "bid": "f", "path": "  "}, "Type the path"),
    ({"kind": "chunk", "bid": "nope", "fid": "f", "offset": 0}, "unknown or was already finished"),
    ({"kind": "begin", "bid": "b", "files": []}, "lists no files"),
    ({"kind": "begin", "bid": "b", "files": [{"fid": "../x", "name": "a", "size": 1}]}, "Malformed file key"),
    ({"kind": "explode", "bid": "b"}, "Unknown message kind"),
])
def test_bad_messages_answer_failed_and_show_error(project: Any, message: dict[str, Any], expected: str) -> None:
    uploader = ImageUploader(project)
    uploader.comm.receive(message, [b"x"] if message["kind"] == "chunk" else [])
    (failed,) = replies(uploader, "failed")
    assert expected in failed["message"]
    assert message["kind"] == "explode" or expected in uploader.error
    assert project.images() == []


def test_without_project_the_uploader_explains(home: Path) -> None:
    uploader = ImageUploader()
    uploader.comm.receive({"kind": "folder", "bid": "f", "path": str(home)})
    assert "No project is open" in replies(uploader, "failed")[0]["message"]
    assert "No project is open" in uploader.error


def test_results_name_their_file_key_so_same_names_stay_apart(make_image: Any, project: Any) -> None:
    """Two folders' ``IMG_0001.png`` are two files: each result says which one it is (``fid``)."""
    uploader = ImageUploader(project)
    files = {"f0": ("IMG_0001.png", make_image(31)), "f1": ("IMG_0001.png", make_image(32, size=(80, 60))),
             "f2": ("IMG_0001.png", b"not a picture at all")}
    uploader.comm.receive({"kind": "begin", "bid": "b", "files": [
        {"fid": fid, "name": name, "size": len(data)} for fid, (name, data) in files.items()]})
    for fid, (_name, data) in files.items():
        send_file(uploader, "b", fid, data)
    uploader.comm.receive({"kind": "commit", "bid": "b"})
    results = {r["fid"]: r for r in replies(uploader, "done")[0]["results"]}
    assert {fid: r["status"] for fid, r in results.items()} == {"f0": "accepted", "f1": "accepted", "f2": "rejected"}
    for fid in ("f0", "f1"):  # each key's image holds that key's bytes
        assert project.image_path(results[fid]["image_id"], "original").read_bytes() == files[fid][1]
    assert all("source" not in r for r in results.values())
