"""`nerf-widgets export`: bad options and missing runs fail with exit 2 and write nothing."""

from __future__ import annotations

import pytest

from nerf_widgets.cli.main import main


def test_bad_resolution_fails_before_loading(tmp_path, capsys):
    out = tmp_path / "m.glb"
    code = main(["export", str(tmp_path / "no-such-run"), "--format", "glb", "--out", str(out), "--resolution", "8"])
    assert code == 2
    assert "resolution must be between 32 and 512" in capsys.readouterr().err
    assert not out.exists()


def test_missing_run_is_not_found(tmp_path, capsys):
    out = tmp_path / "m.ply"
    assert main(["export", str(tmp_path / "no-such-run"), "--format", "ply", "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_is_rejected_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path), "--format", "stl", "--out", str(tmp_path / "m.stl")])
    assert exc.value.code == 2
    assert "invalid choice: 'stl'" in capsys.readouterr().err
