"""The background of an unbounded capture (a room's walls, the floor, what lies behind a garden) as a shell.

An export meshes the box around the scene's centre; a real capture's photos also show everything beyond it,
which then renders empty (fern: the wall and floor are a quarter of every photo, 15 dB lost). The shell is a
depth panorama: six cube faces seen from the cameras' centre, traced through the field with the foreground box
left out, each face a grid of vertices at the depth the field puts there and its render as the texture. Like
a textured skybox with depth, it is exact from the centre and keeps parallax for cameras near it; triangles
the field leaves empty or no photo saw are dropped. Faces wind toward the centre (a viewer culls the rest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from nerf_widgets.core.errors import ValidationError, stop_if_asked
from nerf_widgets.export.formats import MeshData
from nerf_widgets.export.raster import project
from nerf_widgets.export.views import PhotoView

__all__ = ["MIN_OPACITY", "Packed", "RayTrace", "Shell", "attach", "build_shell", "cube_directions", "pack", "unpack"]

STOPPED = "export cancelled while drawing its background"
# origins [N,3], unit directions [N,3] -> colour [N,3], opacity [N], distance along the ray [N] (world units)
RayTrace = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
MIN_OPACITY = 0.5  # a vertex whose ray the field leaves more transparent than this is not background
PAD = 2  # texels of each face's tile repeated around it, so bilinear lookups at a face's edge stay on it
# (forward, up) of each cube face in the world frame (Z up); right = forward x up, as a camera looking down -Z
_FACES = (((1, 0, 0), (0, 0, 1)), ((-1, 0, 0), (0, 0, 1)), ((0, 1, 0), (0, 0, 1)), ((0, -1, 0), (0, 0, 1)),
          ((0, 0, 1), (0, -1, 0)), ((0, 0, -1), (0, 1, 0)))


@dataclass
class Shell:
    """verts [V,3] world, faces [F,3] (counter-clockwise seen from the centre), uv [V,2] into ``image`` (v up),
    image [H,W,3] uint8 (one tile per cube face that kept a triangle, side by side; None untextured), colors [V,3] uint8,
    centre [3], tiles: the cube faces kept."""

    verts: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    image: np.ndarray | None
    colors: np.ndarray
    centre: np.ndarray
    tiles: int


def cube_directions(face: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unit directions [N,3] through face coordinates a (right) and b (up) in [-1, 1] of cube face ``face``."""
    f, u = (np.asarray(v, np.float64) for v in _FACES[face])
    r = np.cross(f, u)
    d = f[None] + a[:, None] * r[None] + b[:, None] * u[None]
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _seen(points: np.ndarray, views: Sequence[PhotoView]) -> np.ndarray:
    """bool [N]: in front of at least one photo and inside its frame (occlusion is not checked)."""
    seen = np.zeros(len(points), bool)
    for view in views:
        px = project(points, view)
        seen |= (px[:, 2] > 0) & (px[:, 0] >= 0) & (px[:, 0] <= view.width) & (px[:, 1] >= 0) & (px[:, 1] <= view.height)
    return seen


def _grid_faces(n: int) -> np.ndarray:
    """Two triangles per cell of an n x n vertex grid (row-major, row 0 at the top, b = +1): counter-clockwise
    seen from the cube's centre, which looks along the face's forward axis with right and up as given."""
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    tl = (i * n + j).reshape(-1)
    tr, bl, br = tl + 1, tl + n, tl + n + 1
    # from inside, right is +a and up is +b: (tl, bl, br) turns counter-clockwise on screen
    return np.concatenate([np.stack([tl, bl, br], 1), np.stack([tl, br, tr], 1)])


def build_shell(trace: RayTrace, centre: np.ndarray, side: int, views: Sequence[PhotoView] | None = None,
                stride: int = 8, min_opacity: float = MIN_OPACITY, textured: bool = True,
                progress: Callable[[float], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Shell | None:
    """The shell around ``centre`` [3]: a texture tile of ``side`` x ``side`` per cube face (``textured``; else
    vertex colours only), a vertex every ``stride`` texels; triangles kept where every corner is opaque enough
    and some corner is inside a photo of ``views`` (all of them without views). None when nothing is kept.
    ``should_stop`` is asked before each face's tracing (``CancelledError``)."""
    if side < 8 or stride < 1 or side % stride:
        raise ValidationError(f"background side {side} must be >= 8 and a multiple of the vertex stride {stride}",
                              field="background")
    centre = np.asarray(centre, np.float64).reshape(3)
    n = side // stride + 1
    coords = np.linspace(-1.0, 1.0, n)
    b, a = np.meshgrid(coords[::-1], coords, indexing="ij")  # row 0 at the top (b = +1)
    cells = _grid_faces(n)
    kept: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for k in range(6):
        stop_if_asked(should_stop, STOPPED, stage="background")
        dirs = cube_directions(k, a.reshape(-1), b.reshape(-1))
        rgb, acc, dist = trace(np.broadcast_to(centre, dirs.shape).astype(np.float32), dirs.astype(np.float32))
        pts = centre + dirs * np.asarray(dist, np.float64)[:, None]
        good = (np.asarray(acc) >= min_opacity) & (np.asarray(dist) > 0)
        keep = good[cells].all(1)
        if views:
            keep &= _seen(pts, views)[cells].any(1)
        if keep.any():
            kept.append((k, pts, np.asarray(rgb), cells[keep], np.stack([a.reshape(-1), b.reshape(-1)], 1)))
        if progress:
            progress(0.3 * (k + 1) / 6)
    if not kept:
        return None
    tile = side + 2 * PAD
    cols = math.ceil(math.sqrt(len(kept)))
    rows = math.ceil(len(kept) / cols)
    image = np.zeros((rows * tile, cols * tile, 3) if textured else (rows * tile, cols * tile, 0), np.uint8)
    verts, faces, uv, colors = [], [], [], []
    texel = (np.arange(side) + 0.5) / side * 2.0 - 1.0
    tb, ta = np.meshgrid(-texel, texel, indexing="ij")
    offset = 0
    for t, (k, pts, rgb, tris, ab) in enumerate(kept):
        y0, x0 = (t // cols) * tile, (t % cols) * tile
        if textured:
            stop_if_asked(should_stop, STOPPED, stage="background")
            dirs = cube_directions(k, ta.reshape(-1), tb.reshape(-1))
            colour, _, _ = trace(np.broadcast_to(centre, dirs.shape).astype(np.float32), dirs.astype(np.float32))
            face_img = (np.asarray(colour).reshape(side, side, 3).clip(0, 1) * 255 + 0.5).astype(np.uint8)
            image[y0 : y0 + tile, x0 : x0 + tile] = np.pad(face_img, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="edge")
        px = x0 + PAD + (ab[:, 0] + 1.0) / 2.0 * side
        py = y0 + PAD + (1.0 - ab[:, 1]) / 2.0 * side
        used = np.unique(tris)
        remap = np.full(len(pts), -1, np.int64)
        remap[used] = np.arange(len(used)) + offset
        verts.append(pts[used])
        uv.append(np.stack([px[used] / image.shape[1], 1.0 - py[used] / image.shape[0]], 1))
        colors.append((rgb[used].clip(0, 1) * 255 + 0.5).astype(np.uint8))
        faces.append(remap[tris])
        offset += len(used)
        if progress:
            progress(0.3 + 0.7 * (t + 1) / len(kept))
    return Shell(np.concatenate(verts), np.concatenate(faces), np.concatenate(uv), image if textured else None,
                 np.concatenate(colors), centre, len(kept))


def attach(data: MeshData, shell: Shell) -> MeshData:
    """``data`` with the shell as its background part (its own texture, so the object's keeps the size asked for
    and a viewer or a 3D tool can hide it); normals toward the centre; vertex colours when ``data`` has no texture."""
    normals = shell.centre[None] - shell.verts
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    textured = data.image is not None and data.uv is not None and shell.image is not None
    part = MeshData(shell.verts, shell.faces, normals, uv=shell.uv if textured else None,
                    image=shell.image if textured else None, colors=None if textured else shell.colors,
                    image_format=data.image_format, jpeg_quality=data.jpeg_quality)
    return replace(data, background=part)


@dataclass
class Packed:
    """The object and its background as one mesh on one atlas (the object's texture on top, the background's
    tiles below), for texture refinement, which fits one texture; ``unpack`` splits the result again."""

    image: np.ndarray  # [H,W,3] uint8
    covered: np.ndarray  # [H,W] texels inside some UV triangle (refinement re-dilates from them)
    verts: np.ndarray
    faces: np.ndarray
    uv: np.ndarray


def pack(data: MeshData, covered: np.ndarray) -> Packed:
    """``data`` (textured, with a textured background) on one atlas; ``covered`` is the object's texels."""
    part = data.background
    if data.image is None or data.uv is None or part is None or part.image is None or part.uv is None:
        raise ValueError("pack needs a textured object with a textured background")
    top, low = data.image, part.image
    width, height = max(top.shape[1], low.shape[1]), top.shape[0] + low.shape[0]
    image = np.zeros((height, width, 3), np.uint8)
    image[: top.shape[0], : top.shape[1]] = top
    image[top.shape[0] :, : low.shape[1]] = low
    mask = np.zeros((height, width), bool)
    mask[: top.shape[0], : top.shape[1]] = covered
    mask[top.shape[0] :, : low.shape[1]] = True  # every tile texel is a traced colour

    def move(uv: np.ndarray, img: np.ndarray, row0: int) -> np.ndarray:
        px, py = uv[:, 0] * img.shape[1], (1.0 - uv[:, 1]) * img.shape[0] + row0
        return np.stack([px / width, 1.0 - py / height], 1)

    return Packed(image, mask, np.concatenate([data.verts, part.verts]),
                  np.concatenate([data.faces, part.faces + len(data.verts)]),
                  np.concatenate([move(data.uv, top, 0), move(part.uv, low, top.shape[0])]))


def object_uv(data: MeshData, packed_shape: tuple[int, int], uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the packed atlas's ``uv`` [N,2] fall on the object's texture (``pack``'s layout: top left), and
    those turned back into the object's own UVs: (mask [N], uv [M,2] float32)."""
    assert data.image is not None
    rows, cols = data.image.shape[:2]
    px, py = uv[:, 0] * packed_shape[1], (1.0 - uv[:, 1]) * packed_shape[0]
    inside = (px < cols) & (py < rows)
    return inside, np.stack([px[inside] / cols, 1.0 - py[inside] / rows], 1).astype(np.float32)


def unpack(data: MeshData, image: np.ndarray) -> MeshData:
    """``data`` with the textures cut back out of a packed atlas ``image`` (``pack``'s layout)."""
    assert data.image is not None and data.background is not None and data.background.image is not None
    rows, cols = data.image.shape[:2]
    low = data.background.image.shape[:2]
    part = replace(data.background, image=np.ascontiguousarray(image[rows : rows + low[0], : low[1]]))
    return replace(data, image=np.ascontiguousarray(image[:rows, :cols]), background=part)
