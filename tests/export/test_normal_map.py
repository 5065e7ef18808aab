"""Normal maps: the full mesh's detail baked onto the decimated one, in glTF's tangent space, written and shown."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.export import SphereBoxField, export_field, make_request, mesh, uv
from nerf_widgets.export import normal_map as nm
from tests.export.export_helpers import validate_gltf

SMALL = {"resolution": 64, "faces": 1500, "texture": 256}
BUMP = 0.04  # bump height on the unit sphere


def _bumps(d: np.ndarray) -> np.ndarray:
    return np.sin(12 * d[:, 0]) * np.sin(12 * d[:, 1]) * np.sin(12 * d[:, 2])


def bumpy_sphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere with bumps of +-BUMP along its radius (an icosphere's vertices moved)."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions)
    d = np.asarray(sphere.vertices, np.float64)
    return d * (1 + BUMP * _bumps(d))[:, None], np.asarray(sphere.faces, np.int64)


def true_normals(d: np.ndarray) -> np.ndarray:
    """The bumpy sphere's normal in directions d [M,3] (unit): the gradient of |p| - (1 + BUMP * bumps(p/|p|))."""
    eps = 1e-5

    def f(p: np.ndarray) -> np.ndarray:
        r = np.linalg.norm(p, axis=1)
        return r - (1 + BUMP * _bumps(p / r[:, None]))

    p = d * (1 + BUMP * _bumps(d))[:, None]
    g = np.stack([(f(p + eps * e) - f(p - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(1), -1, 1)))


def low_mesh(size: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The bumpy sphere decimated to 600 faces, unwrapped: (verts, faces, uv, normals) with UV seams split."""
    high = bumpy_sphere(6)
    lv, lf = mesh.decimate(*high, 600)
    layout = uv.unwrap(lv, lf, size, "auto")
    return lv[layout.vmap], layout.faces, layout.uv, mesh.vertex_normals(lv, lf)[layout.vmap]


def test_the_map_gives_back_the_bumps_decimation_smoothed_away() -> None:
    """At random points of a 600-face sphere, the decoded normal is the bumpy surface's (analytic) normal, where
    the low mesh's own normals miss the bumps."""
    v, f, t, n = low_mesh()
    image, tan = nm.bake_normal_map(v, f, t, n, 512, *nm.oriented_points(*bumpy_sphere(6)))
    rng = np.random.default_rng(1)
    fid = rng.integers(0, len(f), 4000)
    bary = rng.dirichlet([1, 1, 1], 4000).astype(np.float32)
    p, tt, bb, nn = nm.frames(v, f, n, tan, fid, bary)
    decoded = nm.decode(image, (t[f[fid]] * bary[..., None]).sum(1), tt, bb, nn)
    truth = true_normals(p / np.linalg.norm(p, axis=1, keepdims=True))
    plain, mapped = np.median(angles(nn, truth)), np.median(angles(decoded, truth))
    assert plain > 6.0  # the bumps tilt the surface by up to ~25 degrees, which 600 faces do not follow
    assert mapped < 2.0 and mapped < plain / 4


def test_tangents_follow_u_and_handedness_follows_v_also_on_mirrored_charts() -> None:
    """A quad in the xy plane facing +z: with u along +x and v along +y the tangent is +x with w = +1; with u
    mirrored (u along -x) the tangent is -x and w = -1, so w * n x t is still +y, v's direction."""
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    plain = nm.tangents(verts, faces, verts[:, :2].copy(), normals)
    assert np.allclose(plain, [[1, 0, 0, 1]] * 4)
    mirrored = nm.tangents(verts, faces, np.stack([1 - verts[:, 0], verts[:, 1]], 1), normals)
    assert np.allclose(mirrored, [[-1, 0, 0, -1]] * 4)
    bitangent = mirrored[:, 3:] * np.cross(normals, mirrored[:, :3])
    assert np.allclose(bitangent, [[0, 1, 0]] * 4)


def sheet(n: int, z: float, tilt: tuple[float, float], flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid over [0,1]^2 at height z + tilt . (x, y), facing +z (or -z when flipped)."""
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="xy")
    verts = np.stack([x.ravel(), y.ravel(), z + tilt[0] * x.ravel() + tilt[1] * y.ravel()], 1)
    i = np.arange(n - 1)[None, :] + n * np.arange(n - 1)[:, None]
    quads = np.stack([i, i + 1, i + n + 1, i + n], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return verts, (faces[:, ::-1] if flip else faces)


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_tilted_surface_decodes_to_its_tilt_on_plain_and_mirrored_charts(mirrored: bool) -> None:
    """The high surface is tilted; the low quad is flat. Decoded, the map gives the tilted normal, whichever
    way the quad's UVs run, and ignores a second sheet just behind it facing the other way (a thin plate's
    far side)."""
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    uvs = np.stack([1 - verts[:, 0], verts[:, 1]], 1) if mirrored else verts[:, :2].copy()
    top, back = sheet(41, 0.002, (0.3, -0.3)), sheet(41, -0.004, (0.3, -0.3), flip=True)  # crossing z = 0 at x = y
    high = (np.concatenate([top[0], back[0]]), np.concatenate([top[1], back[1] + len(top[0])]))
    image, tan = nm.bake_normal_map(verts, faces, uvs, normals, 64, *nm.oriented_points(*high))
    bary = np.array([[0.5, 0.05, 0.45], [0.5, 0.45, 0.05]], np.float32)  # (0.5, 0.45) and (0.45, 0.5)
    # read as glTF says a viewer reads it: bitangent = w * normal x tangent, from the file's attributes
    t = np.tile(tan[0, :3], (2, 1))
    b = tan[0, 3] * np.cross(np.tile(normals[0], (2, 1)), t)
    decoded = nm.decode(image, (uvs[faces[[0, 1]]] * bary[..., None]).sum(1), t, b, normals[:2])
    truth = np.array([-0.3, 0.3, 1.0]) / np.linalg.norm([-0.3, 0.3, 1.0])
    assert angles(decoded, np.tile(truth, (2, 1))).max() < 1.5


def test_a_flat_map_on_the_mesh_it_came_from_decodes_to_its_own_normals() -> None:
    """Baked from itself, the map is (nearly) flat: (0.5, 0.5, 1) and decoding gives the interpolated normals."""
    v, f, t, n = low_mesh(256)
    image, tan = nm.bake_normal_map(v, f, t, n, 256, *nm.oriented_points(v, f))
    assert np.median(image[..., 2]) >= 250 and abs(float(np.median(image[..., 0])) - 128) <= 2


@pytest.fixture(scope="module")
def bumped(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(field, {format: ExportResult}) of the analytic field with normal maps."""
    field = SphereBoxField(floater=False)
    out = tmp_path_factory.mktemp("bumped")
    made = {fmt: export_field(field.density, field.color, field.aabb, out / fmt / f"model{suffix}", format=fmt,
                              normal_map=True, **SMALL)
            for fmt, suffix in (("glb", ".glb"), ("gltf", ".gltf"), ("obj", ".obj"))}
    return field, made


@pytest.mark.parametrize("layout", ["plain", "mirrored u", "mirrored v", "turned"])
def test_a_glb_decoded_as_the_gltf_spec_says_gives_the_tilt(tmp_path: Path, layout: str) -> None:
    """From the written file alone, as a glTF viewer reads it: NORMAL, TANGENT (bitangent = cross(normal,
    tangent) * w), TEXCOORD_0 (v down) and the PNG (row 0 at v = 0), bilinear. Every chart orientation gives the
    tilted surface's normal (Y-up), where the flat quad's own normal is 30 degrees off."""
    from nerf_widgets.export import formats

    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    x, y = verts[:, 0], verts[:, 1]
    uvs = {"plain": np.stack([x, y], 1), "mirrored u": np.stack([1 - x, y], 1), "mirrored v": np.stack([x, 1 - y], 1),
           "turned": np.stack([y, 1 - x], 1)}[layout]
    image, tan = nm.bake_normal_map(verts, faces, uvs, normals, 64, *nm.oriented_points(*sheet(81, 0.002, (0.3, -0.5))))
    data = formats.MeshData(verts, faces, normals, uv=uvs, image=np.full((64, 64, 3), 128, np.uint8),
                            normal_image=image, tangents=tan)
    path = tmp_path / "quad.glb"
    formats.write_glb(data, path)
    doc = glb_json(path)
    prim = doc["meshes"][0]["primitives"][0]
    n, t, uv = (glb_accessor(path, prim["attributes"][k]) for k in ("NORMAL", "TANGENT", "TEXCOORD_0"))
    stored = glb_image(path, doc["materials"][0]["normalTexture"]["index"]).astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    tri = faces[rng.integers(0, 2, 300)]
    w = rng.dirichlet([1, 1, 1], 300)[..., None]
    nn, tt = (n[tri] * w).sum(1), (t[tri, :3] * w).sum(1)
    bb = np.cross(nn, tt) * t[tri[:, 0], 3:]
    u, v = ((uv[tri] * w).sum(1) * [64, 64] - 0.5).T  # texel coordinates, row 0 at v = 0 (glTF)
    x0, y0 = np.clip(np.floor(u).astype(int), 0, 62), np.clip(np.floor(v).astype(int), 0, 62)
    fx, fy = (u - x0).clip(0, 1)[:, None], (v - y0).clip(0, 1)[:, None]
    m = (stored[y0, x0] * (1 - fx) * (1 - fy) + stored[y0, x0 + 1] * fx * (1 - fy)
         + stored[y0 + 1, x0] * (1 - fx) * fy + stored[y0 + 1, x0 + 1] * fx * fy) * 2 - 1
    decoded = m[:, :1] * tt + m[:, 1:2] * bb + m[:, 2:] * nn
    decoded /= np.linalg.norm(decoded, axis=1, keepdims=True)
    truth = formats.z_up_to_y_up(np.array([[-0.3, 0.5, 1.0]]) / np.linalg.norm([-0.3, 0.5, 1.0]))
    assert angles(decoded, np.tile(truth, (300, 1))).max() < 1.5
    assert angles(nn / np.linalg.norm(nn, axis=1, keepdims=True), np.tile(truth, (300, 1))).min() > 25


def glb_image(path: Path, texture: int) -> np.ndarray:
    """A GLB's embedded image of a texture, as stored (row 0 = top)."""
    import io

    from PIL import Image

    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    doc, blob = json.loads(data[20 : 20 + length]), data[20 + length + 8 :]
    view = doc["bufferViews"][doc["images"][doc["textures"][texture]["source"]]["bufferView"]]
    start = view.get("byteOffset", 0)
    return np.asarray(Image.open(io.BytesIO(blob[start : start + view["byteLength"]])).convert("RGB"))


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20 : 20 + length])


def test_gltf_carries_tangents_and_a_lit_normal_mapped_material(bumped) -> None:  # type: ignore[no-untyped-def]
    import trimesh

    _, made = bumped
    res = made["glb"]
    assert res.normal_map and "normals" in res.seconds
    assert validate_gltf(res.path)["numErrors"] == 0
    doc = glb_json(res.path)
    material = doc["materials"][0]
    assert "normalTexture" in material and "extensions" not in material  # lit: unlit would ignore the map
    assert "TANGENT" in doc["meshes"][0]["primitives"][0]["attributes"]
    assert "KHR_materials_unlit" not in doc.get("extensionsUsed", [])
    loaded = trimesh.load(res.path, force="mesh")
    bumps = np.asarray(loaded.visual.material.normalTexture.convert("RGB"))
    assert bumps.shape == (256, 256, 3) and bumps[..., 2].mean() > 200  # mostly facing out, in tangent space
    gltf = made["gltf"]
    assert validate_gltf(gltf.path)["numErrors"] == 0
    assert {p.name for p in gltf.files} == {"model.gltf", "model.bin", "model_texture.png", "model_normal.png"}


def test_obj_material_names_the_normal_map_for_blender(bumped) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    _, made = bumped
    res = made["obj"]
    mtl = res.path.with_suffix(".mtl").read_text()
    assert "norm model_normal.png" in mtl and "map_Bump -bm 1 model_normal.png" in mtl
    image = np.asarray(Image.open(res.path.with_name("model_normal.png")))
    assert image.shape == (256, 256, 3)


def test_without_the_option_the_export_stays_unlit(exported) -> None:  # type: ignore[no-untyped-def]
    res = exported("glb", "glb", ".glb")
    doc = glb_json(res.path)
    assert not res.normal_map and "normalTexture" not in doc["materials"][0]
    assert "TANGENT" not in doc["meshes"][0]["primitives"][0]["attributes"]
    assert doc["extensionsUsed"] == ["KHR_materials_unlit"]


def test_a_placed_region_turns_the_tangents_with_the_normals(tmp_path: Path) -> None:
    """A yawed region is placed upright: tangents must turn with the normals (else they leave the surface)."""
    import trimesh

    field = SphereBoxField(floater=False)
    region = {"center": [0.1, 0.0, 0.0], "size": [1.4, 1.4, 1.4], "yaw_deg": 33.0, "floor_cut": False}
    res = export_field(field.density, field.color, field.aabb, tmp_path / "r.glb", format="glb", region=region,
                       normal_map=True, **SMALL)
    loaded = trimesh.load(res.path, force="mesh", process=False)
    attrs = glb_json(res.path)["meshes"][0]["primitives"][0]["attributes"]
    tangents, normals = glb_accessor(res.path, attrs["TANGENT"]), glb_accessor(res.path, attrs["NORMAL"])
    assert len(tangents) == len(loaded.vertices)
    assert np.abs((tangents[:, :3] * normals).sum(1)).max() < 1e-3
    assert np.allclose(np.abs(tangents[:, 3]), 1.0)


def glb_accessor(path: Path, index: int) -> np.ndarray:
    """A float VEC2/VEC3/VEC4 accessor of a GLB, as written."""
    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    doc, blob = json.loads(data[20 : 20 + length]), data[20 + length + 8 :]
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    width = {"VEC2": 2, "VEC3": 3, "VEC4": 4}[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(blob, np.float32, acc["count"] * width, start).reshape(acc["count"], width)


@pytest.mark.parametrize("fmt,options,message", [
    ("ply", {}, "has none"),
    ("points", {}, "has none"),
    ("glb", {"texture": 0}, "has none"),
    ("glb", {"normal_map": "yes"}, "must be True, False or None"),
])
def test_a_normal_map_without_a_texture_is_refused_before_any_work(tmp_path: Path, fmt: str, options: dict,
                                                                  message: str) -> None:
    field = SphereBoxField(floater=False)
    suffix = {"ply": ".ply", "points": ".ply", "glb": ".glb"}[fmt]
    with pytest.raises(ValidationError, match=message):
        export_field(field.density, field.color, field.aabb, tmp_path / f"m{suffix}", format=fmt,
                     **{"normal_map": True, **options})
    assert list(tmp_path.iterdir()) == []


def test_the_game_preset_makes_a_map_where_the_format_has_a_texture() -> None:
    box = [[-1, -1, -1], [1, 1, 1]]
    assert make_request("glb", "m.glb", box, preset="game").wants_normal_map()
    assert not make_request("ply", "m.ply", box, preset="game").wants_normal_map()  # no texture: none, no error
    assert not make_request("glb", "m.glb", box, preset="game", normal_map=False).wants_normal_map()
    assert not make_request("glb", "m.glb", box, preset="web").wants_normal_map()
    assert not make_request("glb", "m.glb", box).wants_normal_map()
    assert make_request("obj", "m.obj", box, normal_map=True).wants_normal_map()


def test_the_mesh_viewer_shows_the_map_when_lit(bumped) -> None:  # type: ignore[no-untyped-def]
    from nerf_widgets.widgets.mesh_viewer import MeshViewer

    _, made = bumped
    viewer = MeshViewer(made["glb"].path)
    assert "normal map" in viewer.counts.value and not viewer.lit.disabled
    unlit = viewer.material
    assert type(unlit).__name__ == "MeshBasicMaterial"
    viewer.lit.value = True
    lit = viewer.object.material
    assert type(lit).__name__ == "MeshStandardMaterial" and lit.map is unlit.map  # the same texture, not re-sent
    assert lit.normalMap is not None and lit.normalMap.data.shape == (256, 256, 4)
    attrs = glb_json(made["glb"].path)["meshes"][0]["primitives"][0]["attributes"]
    written = glb_accessor(made["glb"].path, attrs["NORMAL"])  # the file's, not recomputed (creases at UV seams)
    assert np.allclose(viewer.geometry.attributes["normal"].array, written, atol=1e-5)
    viewer.wireframe.value = True
    assert viewer.object.material.wireframe is True
    viewer.lit.value = False
    assert type(viewer.object.material).__name__ == "MeshBasicMaterial" and viewer.object.material.wireframe
    plain = MeshViewer(made["obj"].path)  # OBJ: lit, without a map (trimesh reads none from an MTL)
    plain.lit.value = True
    assert type(plain.object.material).__name__ == "MeshStandardMaterial" and plain.object.material.normalMap is None


def test_fbx_embeds_the_map_blender_read_as_a_normal_map(tmp_path: Path) -> None:
    """The FBX goes through Blender's OBJ import: it must read ``map_Bump`` as a normal map and embed it."""
    from tests.export.export_helpers import assimp_info, need_blender

    need_blender()
    field = SphereBoxField(floater=False)
    res = export_field(field.density, field.color, field.aabb, tmp_path / "m.fbx", format="fbx", normal_map=True, **SMALL)
    info = assimp_info(res.path)
    assert info["Textures (embed.)"] == "2" and res.normal_map
    assert any("Normals" in value for key, value in info.items() if "tex.file" in key)
    # read back by Blender: a Normal Map node of strength 1 on a Non-Color image (without -bm 1, strength 0)
    import subprocess

    from nerf_widgets.export.tools import blender_command

    script = tmp_path / "read.py"
    script.write_text(BLENDER_READ.format(path=str(res.path)))
    out = subprocess.run([*blender_command(), str(script)], capture_output=True, text=True, timeout=300).stdout
    (line,) = [x for x in out.splitlines() if x.startswith("NORMAL_MAP")]
    assert line.split()[1:] == ["1.0", "Non-Color"], out


BLENDER_READ = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.fbx(filepath={path!r})
for material in bpy.data.materials:
    for node in material.node_tree.nodes:
        if node.type == "NORMAL_MAP":
            image = [link.from_node.image for link in node.inputs["Color"].links][0]
            print("NORMAL_MAP", node.inputs["Strength"].default_value, image.colorspace_settings.name)
"""


def test_cancel_while_baking_the_map_stops_in_that_stage_and_leaves_nothing(tmp_path: Path) -> None:
    from nerf_widgets.core.errors import CancelledError

    field = SphereBoxField(floater=False)
    baking = []
    with pytest.raises(CancelledError) as err:
        export_field(field.density, field.color, field.aabb, tmp_path / "m.glb", format="glb", normal_map=True,
                     progress=lambda e: baking.append(e.stage == "normals"), should_stop=lambda: any(baking), **SMALL)
    assert err.value.details["stage"] == "normals"  # asked inside the stage, not only before the next one
    assert list(tmp_path.iterdir()) == []
