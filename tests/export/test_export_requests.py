"""Bad requests fail before any work with ValidationError; progress, cancellation and the nothing-half-written rule."""

from __future__ import annotations

import numpy as np
import pytest

from nerf_widgets.core.errors import CancelledError, ValidationError
from nerf_widgets.export import STAGES, export_field, make_request

BOX = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


@pytest.mark.parametrize(
    "fmt,name,options,message",
    [
        ("stl", "m.stl", {}, "unknown format 'stl'"),
        ("glb", "m.glb", {"resolution": 16}, "resolution must be between 32 and 512"),
        ("glb", "m.glb", {"resolution": 4096}, "resolution must be between 32 and 512"),
        ("glb", "m.glb", {"resolution": 100.5}, "resolution must be an integer"),
        ("glb", "m.glb", {"faces": 10}, "faces must be between 500 and 5000000"),
        ("glb", "m.glb", {"texture": 16}, "texture must be between 64 and 8192"),
        ("glb", "m.glb", {"compress": "zstd"}, "unknown compress 'zstd'"),
        ("ply", "m.ply", {"compress": "draco"}, "compression 'draco' applies to glb/gltf only"),
        ("glb", "m.obj", {}, "writes a .glb file"),
        ("glb", "m.glb", {"iso": -1.0}, "iso must be a positive number"),
        ("glb", "m.glb", {"colour": "red"}, "unknown export option(s): colour"),
        ("glb", "m.glb", {"texture_format": "webp"}, "unknown texture format 'webp'"),
    ],
)
def test_bad_requests_raise_before_any_work(tmp_path, fmt, name, options, message):
    calls = []

    def density(points):
        calls.append(len(points))
        return points[:, 0] * 0

    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_field(density, lambda p, d: p, BOX, tmp_path / name, format=fmt, **options)
    assert calls == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("aabb", [[[0, 0, 0], [1, 1]], [[0, 0, 0], [0, 1, 1]], [[0, 0, np.nan], [1, 1, 1]], "box"])
def test_bad_bounds(tmp_path, aabb):
    with pytest.raises(ValidationError, match="aabb"):
        make_request("glb", tmp_path / "m.glb", aabb)


def test_empty_field_is_a_clear_error_and_writes_nothing(tmp_path):
    import torch

    with pytest.raises(ValidationError, match=r"field is empty.*train longer.*region.*iso="):
        export_field(lambda p: torch.zeros(len(p)), lambda p, d: p, BOX, tmp_path / "m.glb", format="glb",
                     resolution=32)
    assert list(tmp_path.iterdir()) == []


def test_progress_by_stage_in_order(field, tmp_path):
    seen = []
    res = export_field(field.density, field.color, field.aabb, tmp_path / "m.glb", format="glb", resolution=32,
                       faces=1000, texture=64, progress=seen.append)
    stages = list(dict.fromkeys(p.stage for p in seen))
    assert stages == ["sample", "mesh", "cleanup", "unwrap", "bake", "write", "package"]
    assert stages == [s for s in STAGES if s in stages]
    overall = [p.overall for p in seen]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0, abs=0.05)
    assert set(res.seconds) == set(stages)


@pytest.mark.parametrize("stop_at,before", [("mesh", "sample"), ("bake", "unwrap"), ("write", "bake")])
def test_cancel_between_stages_leaves_nothing(field, tmp_path, stop_at, before):
    seen: list[str] = []  # (without photos there is no refine stage between bake and write)
    with pytest.raises(CancelledError, match="^export cancelled"):
        export_field(field.density, field.color, field.aabb, tmp_path / "m.glb", format="glb", resolution=32,
                     faces=1000, texture=64, progress=lambda p: seen.append(p.stage),
                     should_stop=lambda: stop_at in seen or (seen and seen[-1] == before))
    assert stop_at not in seen
    assert list(tmp_path.iterdir()) == []


def test_texture_format_auto_is_jpeg_only_when_compressing(tmp_path):
    assert make_request("glb", tmp_path / "m.glb", BOX).texture_format == "png"
    assert make_request("glb", tmp_path / "m.glb", BOX, compress="draco").texture_format == "jpeg"
    assert make_request("glb", tmp_path / "m.glb", BOX, compress="draco", texture_format="png").texture_format == "png"
