"""Export benchmark: wall time at default settings, sizes per format, Draco ratio, mesh-render PSNR (with a run).

    .venv/bin/python tests/bench/export_lego.py                      # analytic field (no trained run needed)
    .venv/bin/python tests/bench/export_lego.py --run RUN_DIR        # a trained lego run: adds mesh-render PSNR
        [--data ../shared/datasets/lego] [--formats glb,gltf,obj,ply,points,fbx] [--out /tmp/export-bench]
        [--refine-minutes 0 1]   # GLBs with texture refinement against the training photos (0 = bake only)
        [--watertight]           # those GLBs made watertight; reports whether they are a closed volume
    # the issue-16 figures: field vs mesh PSNR before/after refinement, export time per stage
    .venv/bin/python tests/bench/export_lego.py --run /work/runs/lego10/marks/10min --data /work/shared/datasets/lego \
        --formats glb --refine-minutes 0 1

Prints one JSON line per measurement. Mesh-render PSNR renders the exported GLB (unlit texture, plus its
view-dependent colour as the MeshViewer adds it; ``texture_only`` is the texture alone) with OpenGL
(moderngl on EGL; Mesa's llvmpipe software renderer where there is no GPU) from every 8th test view, on
white, against the ground truth, beside the NeRF's own PSNR on the same views. With a run, each GLB of
``--refine-minutes`` is exported from the same field (the training split's photos as refinement views) and
scored; ``gap_db`` = field PSNR - mesh PSNR. ``comparison`` is what the export itself measured and left
beside the GLB for the MeshViewer (3 test views at 320 px, the CPU rasteriser, 2x2 supersampled).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

SUFFIX = {"glb": ".glb", "gltf": ".gltf", "obj": ".obj", "ply": ".ply", "points": ".ply", "fbx": ".fbx"}


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def load(run: Path | None):
    if run is None:
        from nerf_widgets.export import SphereBoxField

        return SphereBoxField(floater=False), "analytic"
    from nerf_widgets.engine import load_field

    return load_field(run), str(run)


def export_all(field, source: str, out: Path, formats: list[str], views=None) -> Path:  # type: ignore[no-untyped-def]
    from nerf_widgets.export import export_field

    glb = out / "glb" / "model.glb"
    runs = [("glb", "none", glb)] + [(f, "none", out / f / f"model{SUFFIX[f]}") for f in formats if f != "glb"]
    runs += [("glb", c, out / f"glb-{c}" / "model.glb") for c in ("draco", "meshopt")]
    sizes: dict[str, int] = {}
    for fmt, compress, path in runs:
        t0 = time.perf_counter()
        res = export_field(field.density, field.color, field.aabb, path, format=fmt, compress=compress,
                           views=views if fmt != "ply" and fmt != "points" else None)
        total = sum(res.sizes.values())
        sizes[f"{fmt}-{compress}"] = total
        emit(source=source, format=fmt, compress=compress, seconds=round(time.perf_counter() - t0, 2),
             stages=res.seconds, bytes=total, files=res.sizes, vertices=res.vertices, faces=res.faces,
             iso=round(res.iso, 3), uv=res.uv_method, texture=res.texture)
    for c in ("draco", "meshopt"):
        emit(source=source, metric=f"glb_{c}_ratio", value=round(sizes["glb-none"] / sizes[f"glb-{c}"], 2))
    return glb


_GL = None  # one EGL context per process


def render_gl(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, image: np.ndarray, cam, samples: int = 4,
              term=None):  # type: ignore[no-untyped-def]
    """Textured, unlit render [H,W,3] on white of a world-frame (Z-up) mesh seen by an OpenGL camera.

    OpenGL through moderngl on an EGL context (Mesa's llvmpipe without a GPU): 4x MSAA, mipmapped
    trilinear texture filtering, projection from the camera's pinhole intrinsics. With ``term`` (the file's
    ``export.view_term.ViewTerm``) the colour is the MeshViewer's: texture + A(uv) d, d the ray from the camera
    turned to the file's Y-up frame, A read bilinearly from its three images (no mipmaps, as it was fitted).
    """
    import moderngl

    global _GL
    if _GL is None:
        _GL = moderngl.create_standalone_context(backend="egl")
    ctx = _GL
    h, w = int(cam.height), int(cam.width)
    near, far = 0.01, 100.0
    proj = np.array([[2 * cam.fx / w, 0, 1 - 2 * cam.cx / w, 0],
                     [0, 2 * cam.fy / h, 2 * cam.cy / h - 1, 0],
                     [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
                     [0, 0, -1, 0]])
    c2w = np.eye(4)
    c2w[:3] = np.asarray(cam.c2w, np.float64)[:3]
    mvp = (proj @ np.linalg.inv(c2w)).astype("f4")
    prog = ctx.program(
        vertex_shader="""#version 330
        uniform mat4 mvp; in vec3 pos; in vec2 tc; out vec2 v_tc; out vec3 v_pos;
        void main() { gl_Position = mvp * vec4(pos, 1.0); v_tc = tc; v_pos = pos; }""",
        fragment_shader="""#version 330
        uniform sampler2D tex; uniform sampler2D a0; uniform sampler2D a1; uniform sampler2D a2;
        uniform vec3 eye; uniform float zero; uniform float step; uniform float amount;
        in vec2 v_tc; in vec3 v_pos; out vec4 color;
        vec3 row(sampler2D t) { return (texture(t, v_tc).rgb * 255.0 - zero) * step; }
        void main() {
          vec3 w = normalize(v_pos - eye);
          vec3 d = vec3(w.x, w.z, -w.y);
          vec3 term = vec3(dot(row(a0), d), dot(row(a1), d), dot(row(a2), d));
          color = vec4(clamp(texture(tex, v_tc).rgb + amount * term, 0.0, 1.0), 1.0);
        }""")
    prog["mvp"].write(mvp.T.tobytes())  # column-major
    tex = ctx.texture((image.shape[1], image.shape[0]), 3, np.ascontiguousarray(np.flipud(image[..., :3])).tobytes())
    tex.build_mipmaps()
    tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    tex.repeat_x = tex.repeat_y = False  # the file's CLAMP_TO_EDGE (moderngl repeats by default)
    tex.use(0)
    rows = term.images() if term is not None else [np.full((1, 1, 3), 128, np.uint8)] * 3
    extra = [ctx.texture((r.shape[1], r.shape[0]), 3, np.ascontiguousarray(np.flipud(r)).tobytes()) for r in rows]
    for k, t in enumerate(extra):
        t.filter = (moderngl.LINEAR, moderngl.LINEAR)
        t.repeat_x = t.repeat_y = False
        t.use(k + 1)
        prog[f"a{k}"].value = k + 1
    prog["tex"].value = 0
    zero, step = term.byte_code() if term is not None else (128.0, 0.0)
    prog["zero"].value, prog["step"].value, prog["amount"].value = zero, step, float(term is not None)
    prog["eye"].value = tuple(float(x) for x in np.asarray(cam.c2w, np.float64)[:3, 3])
    vbo = ctx.buffer(np.concatenate([verts, uv], 1).astype("f4").tobytes())
    ibo = ctx.buffer(np.asarray(faces, "i4").tobytes())
    vao = ctx.vertex_array(prog, [(vbo, "3f 2f", "pos", "tc")], ibo)
    msaa = ctx.framebuffer(ctx.renderbuffer((w, h), 4, samples=samples), ctx.depth_renderbuffer((w, h), samples=samples))
    out = ctx.framebuffer(ctx.renderbuffer((w, h), 4))
    msaa.use()
    ctx.enable(moderngl.DEPTH_TEST)
    ctx.clear(1.0, 1.0, 1.0, 1.0)
    vao.render(moderngl.TRIANGLES)
    ctx.copy_framebuffer(out, msaa)
    rgb = np.frombuffer(out.read(components=3), np.uint8).reshape(h, w, 3)[::-1]
    for obj in (vao, vbo, ibo, tex, *extra, prog, msaa, out):
        obj.release()
    return rgb.astype(np.float32) / 255.0


def field_psnr(field, data, every: int = 8) -> float:  # type: ignore[no-untyped-def]
    """The NeRF's own PSNR on every ``every``-th test view, on white."""
    from nerf_widgets.engine.metrics import psnr
    from nerf_widgets.engine.sampler import ground_truth

    values = [float(psnr(field.render(data.cameras[i]), ground_truth(data, i, data.cameras[i])))
              for i in data.splits["test"][::every]]
    return float(np.mean(values))


def mesh_psnr(glb: Path, data, every: int = 8) -> tuple[float, float | None, int]:  # type: ignore[no-untyped-def]
    """Mesh render of every ``every``-th test view against the ground truth on white -> (mean PSNR as the
    MeshViewer draws it, mean PSNR of the texture alone as other programs do (None: the file has no view
    term, the two are the same), views)."""
    import trimesh

    from nerf_widgets.engine.metrics import psnr
    from nerf_widgets.engine.sampler import ground_truth
    from nerf_widgets.export.gltf_read import read_view_term

    mesh = trimesh.load(glb, force="mesh")
    verts = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 2], mesh.vertices[:, 1]], 1)  # GLB Y-up -> world Z-up
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    term = read_view_term(glb)
    values, plain = [], []
    for i in data.splits["test"][::every]:
        cam, truth = data.cameras[i], ground_truth(data, i, data.cameras[i])
        for out, t in ((values, term), (plain, None)) if term is not None else ((values, None),):
            render = render_gl(verts, np.asarray(mesh.faces), np.asarray(mesh.visual.uv), image, cam, term=t)
            out.append(float(psnr(render, truth)))
    return float(np.mean(values)), float(np.mean(plain)) if plain else None, len(values)


def closed_volume(glb: Path) -> dict[str, bool]:
    """Whether the GLB, its vertices welded by position (UV seams split them), is watertight and a volume."""
    import trimesh

    mesh = trimesh.load(glb, force="mesh", process=False)
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    return {"watertight": bool(mesh.is_watertight), "volume": bool(mesh.is_volume)}


def refine_runs(field, run: Path, data, out: Path, minutes: list[float], every: int = 8,  # type: ignore[no-untyped-def]
                nerf: float | None = None, watertight: bool = False, view_dependence: bool | None = None) -> None:
    """One GLB per refinement budget from the same field; mesh PSNR, the field's, the gap and stage times."""
    from nerf_widgets.export import export_field, refine
    from nerf_widgets.jobs.export_photos import field_renderer, photo_views

    views, held_out = photo_views(data), photo_views(data, "test")
    nerf = field_psnr(field, data, every) if nerf is None else nerf
    for m in minutes:
        t0 = time.perf_counter()
        res = export_field(field.density, field.color, field.aabb, out / f"glb-refine{m:g}" / "model.glb",
                           format="glb", views=views, refine_minutes=m, compare_views=held_out,
                           render_field=field_renderer(field), watertight=watertight,
                           view_dependence=view_dependence if m > 0 else None)
        seconds = round(time.perf_counter() - t0, 1)
        value, plain, n = mesh_psnr(res.path, data, every)
        emit(source=str(run), metric="mesh_render_psnr", refine_minutes=m, value=round(value, 2),
             texture_only=None if plain is None else round(plain, 2),
             nerf_psnr=round(nerf, 2), gap_db=round(nerf - value, 2), views=n, export_s=seconds,
             stages=res.seconds, refine=res.refine, faces=res.faces, texture=res.texture,
             comparison={k: v for k, v in (res.comparison or {}).items() if k != "views"},
             load=round(os.getloadavg()[0], 1), refine_clock="cpu" if refine.CLOCK is time.process_time else "wall",
             closed=closed_volume(res.path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/datasets/lego")
    parser.add_argument("--formats", default="glb,gltf,obj,ply,points,fbx")
    parser.add_argument("--out", type=Path, default=Path("/tmp/export-bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refine-minutes", type=float, nargs="*", default=[0.0, 1.0],
                        help="texture refinement budgets scored with a run (0 = the bake only)")
    parser.add_argument("--skip-formats", action="store_true", help="with a run: only the refinement GLBs")
    parser.add_argument("--watertight", action="store_true", help="with a run: the GLBs exported watertight")
    parser.add_argument("--view-dependence", choices=["auto", "on", "off"], default="auto",
                        help="the refined GLBs' view-dependent colour (auto: the export's default)")
    parser.add_argument("--nerf-psnr", type=float, default=None, help="the field's PSNR on these views, if known")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="refinement budget clock: wall, or this process's CPU time (a shared machine)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        from nerf_widgets.export import refine

        refine.CLOCK = time.process_time
    field, source = load(args.run)
    if not (args.skip_formats and args.run is not None):
        export_all(field, source, args.out, args.formats.split(","))
    if args.run is not None:
        from nerf_widgets.engine import load_dataset

        refine_runs(field, args.run, load_dataset(args.data), args.out, args.refine_minutes, nerf=args.nerf_psnr,
                    watertight=args.watertight, view_dependence={"auto": None, "on": True, "off": False}[
                        args.view_dependence])


if __name__ == "__main__":
    main()
