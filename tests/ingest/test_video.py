"""Video input: frames at ``video_fps``, the sharpest per window, the video kept once as the original."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerf_widgets.studio import Project, Studio
from tests.ingest.conftest import video_mp4


def test_video_yields_the_sharpest_frame_per_window(home: Path, tmp_path: Path) -> None:
    clip = video_mp4(tmp_path / "clip.bin", seconds=2.0, fps=10)  # detected by content, not by name
    p = Studio(home, video_fps=1.0).create_project("video")
    results = p.upload_images(clip)
    assert [r.status for r in results] == ["accepted", "accepted"], [r.reason for r in results]
    # the only sharp frames are frames 5 and 15 (t = 0.5 s and 1.5 s)
    assert [round(r.frame_time or -1, 1) for r in results] == [0.5, 1.5]
    assert [r.name for r in results] == ["clip.bin @ 0.50 s", "clip.bin @ 1.50 s"]
    recs = p.images()
    assert {r.source_id for r in recs} != {None} and len({r.source_id for r in recs}) == 1
    assert recs[0].format == "mp4" and (recs[0].width, recs[0].height) == (64, 48)
    originals = list((p.dir / "originals").iterdir())
    assert [o.name for o in originals] == [f"{recs[0].source_id}.mp4"]
    assert originals[0].read_bytes() == clip.read_bytes()
    # the original video goes with its last frame
    p.remove_image(recs[0].id)
    assert (p.dir / "originals" / originals[0].name).exists()
    p.remove_image(recs[1].id)
    assert list((p.dir / "originals").iterdir()) == []


@pytest.mark.parametrize(("container", "codec", "fmt"), [("mov", "mpeg4", "mov"), ("webm", "libvpx", "webm")])
def test_mov_and_webm_are_detected_by_content(project: Project, tmp_path: Path, container: str, codec: str,
                                              fmt: str) -> None:
    clip = video_mp4(tmp_path / "clip", seconds=1.0, fps=10, container=container, codec=codec)
    results = project.upload_images(clip)
    assert [r.status for r in results] == ["accepted"] * 2, [r.reason for r in results]  # default 2 frames/s
    assert {i.format for i in project.images()} == {fmt}


def test_same_video_twice_gives_duplicates_and_no_second_original(project: Project, tmp_path: Path) -> None:
    clip = video_mp4(tmp_path / "clip.mp4", seconds=1.0, fps=10)
    first = project.upload_images(clip)
    second = project.upload_images(clip)
    assert {r.status for r in first} == {"accepted"} and {r.status for r in second} == {"duplicate"}
    assert len(list((project.dir / "originals").iterdir())) == 1


def test_truncated_video_is_rejected_without_leftovers(project: Project, tmp_path: Path) -> None:
    clip = video_mp4(tmp_path / "clip.mp4", seconds=1.0, fps=10)
    results = project.upload_images(("broken.mp4", clip.read_bytes()[:200]))
    assert [r.status for r in results] == ["rejected"], results
    assert list((project.dir / "originals").iterdir()) == []
    assert project.images() == []
