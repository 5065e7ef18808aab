"""CLI contract: render / eval / video / train produce the files and JSON the issue specifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from nerf_widgets.cli.main import main


def test_render_writes_one_png_per_frame_at_camera_resolution(fast_run: tuple[Path, Any], tmp_path: Path,
                                                                tiny_scene: Path) -> None:
    run, _ = fast_run
    meta = json.loads((tiny_scene / "transforms.json").read_text())
    meta.update(w=48, h=40, cx=24.0, cy=20.0)
    meta["frames"] = [dict(f, file_path=f"./test/r_{i}") for i, f in enumerate(meta["frames"][:3])]  # no images
    cams = tmp_path / "cams.json"
    cams.write_text(json.dumps(meta))
    assert main(["render", str(run), "--cameras", str(cams), "--out", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["r_0.png", "r_1.png", "r_2.png"]
    img = Image.open(tmp_path / "out" / "r_0.png")
    assert img.mode == "RGB" and img.size == (48, 40)
    arr = np.asarray(img)
    white = (arr.min(-1) > 220).mean()
    saturated = (arr.astype(int).max(-1) - arr.min(-1) > 80).mean()
    assert 0.1 < white < 0.9 and saturated > 0.1  # white background around coloured spheres


def test_eval_prints_mean_and_per_view_json(fast_run: tuple[Path, Any], tiny_scene: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = fast_run
    assert main(["eval", str(run), "--data", str(tiny_scene), "--every", "1", "--no-lpips",
                 "--out", str(tmp_path / "r")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 2 and [v["name"] for v in out["views"]] == ["r_0", "r_8"]
    assert out["psnr"] == pytest.approx(np.mean([v["psnr"] for v in out["views"]]))
    assert out["psnr"] > 20 and 0 < out["ssim"] <= 1 and "lpips" in out
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["r_0.png", "r_8.png"]


def test_eval_unknown_split_is_a_clear_error(fast_run: tuple[Path, Any], tiny_scene: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = fast_run
    assert main(["eval", str(run), "--data", str(tiny_scene), "--split", "val"]) == 2
    assert "no 'val' split" in capsys.readouterr().err


def test_render_of_a_folder_that_is_not_a_run(tmp_path: Path, tiny_scene: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["render", str(tmp_path), "--cameras", str(tiny_scene / "transforms.json"), "--out", str(tmp_path)])
    assert code == 2 and "no checkpoint" in capsys.readouterr().err


def test_video_writes_an_mp4(fast_run: tuple[Path, Any], tmp_path: Path) -> None:
    import av

    run, _ = fast_run
    out = tmp_path / "orbit.mp4"
    assert main(["video", str(run), "--out", str(out), "--frames", "6", "--size", "48"]) == 0
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (48, 48)


def test_train_cli_writes_run_layout_and_bad_data_fails(tiny_scene: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(tiny_scene), "--out", str(run), "--preset", "quick", "--max-steps", "3",
                 "--batch-rays", "64", "--threads", "1", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3 and summary["reason"] == "max_steps"
    assert (run / "config.json").is_file() and (run / "metrics.jsonl").is_file()
    assert list((run / "checkpoints").glob("ckpt_00000003.pt"))
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_cli_refines_poses_and_resumes_with_them(tiny_scene: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from nerf_widgets.engine.checkpoint import latest_checkpoint, load_checkpoint

    run = tmp_path / "run"
    common = ["--preset", "quick", "--batch-rays", "128", "--threads", "1", "--quiet", "--refine-poses"]
    assert main(["train", str(tiny_scene), "--out", str(run), "--max-steps", "6", *common]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(first["poses"]) == {"rotation_deg_median", "rotation_deg_max", "translation_median", "translation_max"}
    assert 0 < first["poses"]["rotation_deg_max"] < 1  # six small steps moved the cameras a little
    delta = load_checkpoint(latest_checkpoint(run))["model"]["poses.delta"]
    assert delta.shape[1] == 6 and torch.count_nonzero(delta) > 0
    assert main(["train", str(tiny_scene), "--out", str(run), "--max-steps", "9", *common]) == 0  # resumes
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["step"] == 9 and second["poses"]["rotation_deg_max"] > 0
    end = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert end["type"] == "end" and end["poses"] == second["poses"]
