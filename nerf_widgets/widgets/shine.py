"""The view-dependent colour of an export (``export.view_term``) drawn by three.js: texture + A(uv) d.

One texture carries everything: pythreejs (2.4) hands a ShaderMaterial's texture uniforms to three.js through a
loop whose callbacks all see its last name, so with two textures, or a texture and a number, the texture lands
on the wrong name and the shader samples black. The colour texture and A's three rows therefore share one atlas
(``Atlas``: the colour at the top left, the rows beside and below it), the scale is written into the shader's text, and the atlas is
the material's only uniform. Each picture is sampled clamped to its own texel centres, as the CPU's lookup
(``export.texture.corners``) clamps at the edges, so no neighbour bleeds in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Atlas", "shine_material"]

_VERTEX = """
varying vec2 vUv;
varying vec3 vWorld;
void main() {
  vUv = uv;
  vec4 world = modelMatrix * vec4(position, 1.0);
  vWorld = world.xyz;
  gl_Position = projectionMatrix * viewMatrix * world;
}
"""


@dataclass(frozen=True)
class Atlas:
    """The colour image [H,W,3] and A's rows [h,w,3] x 3 in one image: colour at the top left, rows 0 and 1
    stacked on its right, row 2 below it (1.5 times the colour's side each way for rows of half its side: 6144
    texels for a 4096 texture, within WebGL's usual 8192). ``rects`` are (column, row, width, height) in texels,
    row 0 at the top."""

    image: np.ndarray
    rects: tuple[tuple[int, int, int, int], ...]

    @classmethod
    def pack(cls, colour: np.ndarray, rows: list[np.ndarray]) -> Atlas:
        (big_h, big_w), (h, w) = colour.shape[:2], rows[0].shape[:2]
        below = max(big_h, 2 * h)
        rects = ((0, 0, big_w, big_h), (big_w, 0, w, h), (big_w, h, w, h), (0, below, w, h))
        image = np.zeros((below + h, big_w + w, 3), np.uint8)
        for (x, y, rw, rh), part in zip(rects, [colour, *rows], strict=True):
            image[y : y + rh, x : x + rw] = part[..., :3]
        return cls(image, rects)

    def glsl(self, zero: float, step: float, shine: bool) -> str:
        """The fragment shader: ``at(k)`` samples picture k at the fragment's uv, clamped to that picture's texel
        centres, in three.js' texture space (v up: the data's rows are flipped); a byte b of A reads as
        (b - zero) * step."""
        height, width = self.image.shape[:2]
        pick = "\n".join(f"  if (k == {k}) r = vec4({x:.1f}, {y:.1f}, {w:.1f}, {h:.1f});"
                         for k, (x, y, w, h) in enumerate(self.rects))
        term = "vec3(dot(row(1), d), dot(row(2), d), dot(row(3), d))" if shine else "vec3(0.0)"
        return f"""
uniform sampler2D atlas;
varying vec2 vUv;
varying vec3 vWorld;
vec3 at(int k) {{
  vec4 r;
{pick}
  vec2 p = vec2(clamp(vUv.x * r.z, 0.5, r.z - 0.5) + r.x, clamp((1.0 - vUv.y) * r.w, 0.5, r.w - 0.5) + r.y);
  return texture2D(atlas, vec2(p.x / {width:.1f}, 1.0 - p.y / {height:.1f})).rgb;
}}
vec3 row(int k) {{ return (at(k) * 255.0 - {zero:.1f}) * {step:.9e}; }}
void main() {{
  vec3 d = normalize(vWorld - cameraPosition);
  gl_FragColor = vec4(clamp(at(0) + {term}, 0.0, 1.0), 1.0);
}}
"""


def shine_material(atlas: Atlas, texture: Any, term: Any, shine: bool, wireframe: bool, side: str) -> Any:
    """A ShaderMaterial drawing ``atlas`` (sent as ``texture``) with the term (``shine``) or the colour alone."""
    import pythreejs as p3

    zero, step = term.byte_code()
    return p3.ShaderMaterial(uniforms={"atlas": {"value": texture}}, vertexShader=_VERTEX,
                             fragmentShader=atlas.glsl(zero, step, shine), wireframe=wireframe, side=side)
