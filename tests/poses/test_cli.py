"""The poses / poses-import subcommands through the real entry point."""

from __future__ import annotations

import json

import numpy as np

from nerf_widgets.cli.main import main
from tests.poses.conftest import write_image


def test_poses_import_writes_transforms(tmp_path, capsys):
    for k in range(3):
        write_image(tmp_path / "images" / f"image{k:03d}.png", np.full((30, 40, 3), 9 * k, np.uint8))
    rows = np.zeros((3, 17))
    rows[:, :15] = np.array([[0, 1, 0, 0, 300], [-1, 0, 0, 0, 400], [0, 0, 1, 0, 350]]).ravel()
    rows[:, 3] = [0.0, 1.0, 2.0]
    np.save(tmp_path / "poses_bounds.npy", rows)
    rc = main(["poses-import", str(tmp_path / "poses_bounds.npy"), "--images", str(tmp_path / "images"),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    data = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert len(data["frames"]) == 3 and data["fl_x"] == 35.0
    assert "registered 3/3 images" in capsys.readouterr().out


def test_poses_reports_failure_and_writes_nothing(tmp_path, capsys):
    for k in range(3):
        write_image(tmp_path / "images" / f"black{k}.png", np.zeros((30, 40), np.uint8))
    rc = main(["poses", str(tmp_path / "images"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "black1.png: blank image (all black)" in err
    assert not (tmp_path / "out").exists()
