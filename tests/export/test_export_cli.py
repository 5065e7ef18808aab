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


def test_a_real_capture_exports_with_its_background(tmp_path, capsys):
    """A tiny real training on opaque photos (the contracted path), exported by the CLI: the grey backdrop the
    photos show beyond the object's box comes back as the shell, and ``--no-background`` leaves it out."""
    import json

    import numpy as np
    import trimesh

    from nerf_widgets.engine import load_field, make_config, train
    from tests.engine.engine_scene import make_scene
    from tests.export.export_helpers import y_up_to_z_up

    scene = make_scene(tmp_path / "photos", n_views=8, size=32, opaque=True)
    cfg = make_config("fast", "quick", max_steps=60, max_minutes=0, batch_rays=512, eval_every=0, checkpoint_every=60,
                      threads=1, model={"res_schedule": [[0, 24]], "occ_every": 8})
    train(scene, tmp_path / "run", cfg, resume=False)
    common = ["--format", "glb", "--resolution", "32", "--faces", "1000", "--texture", "256", "--refine-minutes", "0",
              "--compare", "1"]
    results = {}
    for flag in ("--background", "--no-background"):
        out = tmp_path / flag.strip("-") / "m.glb"
        assert main(["export", str(tmp_path / "run"), *common, flag, "--out", str(out)]) == 0
        results[flag] = (json.loads(capsys.readouterr().out.strip().splitlines()[-1]), trimesh.load(out, force="mesh"))
    shell, plain = results["--background"], results["--no-background"]
    assert shell[0]["background"]["faces"] > 100 and plain[0]["background"] is None
    assert len(shell[1].faces) == len(plain[1].faces) + shell[0]["background"]["faces"]
    # the plain mesh stays in the exported box; the shell lies beyond it (files are Y-up, the field Z-up)
    box = load_field(tmp_path / "run", device="cpu").aabb.numpy()
    beyond = [float(np.maximum(box[0] - y_up_to_z_up(m.vertices), y_up_to_z_up(m.vertices) - box[1]).max())
              for m in (shell[1], plain[1])]
    voxel = float((box[1] - box[0]).max()) / 32
    assert beyond[1] < voxel < 4 * voxel < beyond[0]
    # the game preset bakes a normal map (its sizes overridden by the flags given), --no-normal-map leaves it out
    from tests.export.export_helpers import validate_gltf

    maps = {}
    for name, flags in (("game", ["--preset", "game"]), ("asked", ["--normal-map"]),
                        ("game-without", ["--preset", "game", "--no-normal-map"])):
        out = tmp_path / name / "m.glb"
        assert main(["export", str(tmp_path / "run"), *common, *flags, "--out", str(out)]) == 0
        maps[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert maps[name]["faces"] <= 1000 + maps[name]["background"]["faces"]  # --faces wins over the preset's
    assert maps["game"]["normal_map"] and maps["asked"]["normal_map"] and not maps["game-without"]["normal_map"]
    report = validate_gltf(tmp_path / "game" / "m.glb")
    assert report["numErrors"] == 0, report["messages"]  # zero normals at zero-area faces were 2 errors here
    # refined with the background on one atlas: the view term is fitted on the object's samples, in its own UVs
    from nerf_widgets.export.gltf_read import read_view_term

    shine = {}
    for flag in ("--view-dependence", "--no-view-dependence"):
        out = tmp_path / flag.strip("-") / "m.glb"
        assert main(["export", str(tmp_path / "run"), *common, "--refine-minutes", "0.2", flag, "--out", str(out)]) == 0
        shine[flag] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert shine[flag]["background"]["faces"] > 100
    with_term, without = shine["--view-dependence"], shine["--no-view-dependence"]
    assert "view_term" not in without["refine"] and not without["view_term"]
    # 8 photos: none held out to watch (refine.HOLDOUT_EVERY), so the term is kept
    assert with_term["refine"]["view_term"]["samples"] > 0 and with_term["view_term"]
    term = read_view_term(tmp_path / "view-dependence" / "m.glb")
    assert term is not None and term.image.shape[:2] == (128, 128)  # the object's 256 texture, not the packed atlas
