"""MeshViewer: an exported GLB / glTF / OBJ / PLY (mesh or point cloud) in pythreejs, and what it lost.

Files are read with trimesh, each part where its glTF node puts it; a Draco or meshopt glTF, which trimesh cannot
decode, is read from a plain copy gltf-transform makes (the tool that compressed it).

Textured meshes are drawn unlit (the colour is baked, as the file's KHR_materials_unlit material says unless it
carries a normal map), vertex-coloured ones likewise; orbit controls, a wireframe toggle and vertex/face counts.
"Lit" shades the mesh with a light that follows the camera and, when the file carries one (``normalTexture``),
its normal map: what an engine or Blender will show of its shape. When the file carries a view-dependent colour
(``export.view_term``, a glTF extension other programs skip) the unlit mesh is drawn with it by a small shader,
texture + A(uv) d, d the ray from the camera; "Shine" off shows the texture alone, as other programs do. A real capture's background (the file's part
named "background") is drawn front faces only, so from the starting view, outside it, the object shows, and the
camera frames the object; orbiting into the shell shows the room around. When the export
left a comparison beside the file (``export.compare``: ``model.compare/``), the photo, the field's render
and the mesh's render of the same view are shown side by side with both PSNRs, one view at a time. Works
on its own (``MeshViewer("model.glb")``) or inside ``StudioApp`` (``show(path)`` from the ExportPanel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets
import numpy as np

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.studio.catalog import read_export_comparison, read_view_term, readable_mesh_file
from nerf_widgets.widgets.common import Notice, error_message, esc
from nerf_widgets.widgets.panel import PanelMixin
from nerf_widgets.widgets.shine import Atlas, shine_material

__all__ = ["LoadedMesh", "MeshViewer", "load_mesh_file"]

VIEWABLE = (".glb", ".gltf", ".obj", ".ply")
BACKGROUND = "background"  # the part export.background writes (glTF node and mesh, OBJ object and material)


@dataclass
class LoadedMesh:
    """Display-ready arrays in three.js' Y-up frame. faces is None for a point cloud; image row 0 = top."""

    verts: np.ndarray  # [V,3] float32
    faces: np.ndarray | None  # [F,3] uint32
    uv: np.ndarray | None = None  # [V,2] v up
    colors: np.ndarray | None = None  # [V,3] float32 in [0,1]
    image: np.ndarray | None = None  # [H,W,3] uint8
    normals: np.ndarray | None = None  # [V,3] float32 vertex normals (lit shading)
    normal_image: np.ndarray | None = None  # [H,W,3] uint8 tangent-space normal map (+Y along +v), row 0 = top
    background: LoadedMesh | None = None  # the export's background part, when the file has one
    view_term: Any = None  # the object's view-dependent colour (export.view_term.ViewTerm), same UVs
    problem: str = ""  # what of the file could not be shown (the rest is)


def _z_up_to_y_up(v: np.ndarray) -> np.ndarray:
    return np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1)


def load_mesh_file(path: str | Path) -> LoadedMesh:
    """Read a file with trimesh (a Draco / meshopt glTF through a plain copy); PLY (written Z-up) is turned to
    Y-up like glTF/OBJ."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no file at {str(path)!r}")
    if path.suffix.lower() not in VIEWABLE:
        raise ValidationError(f"MeshViewer shows {', '.join(VIEWABLE)} files, not {path.suffix!r}")
    with readable_mesh_file(path) as readable:
        mesh = _load(readable)
        try:
            term = read_view_term(readable)
        except ValueError as err:
            term, mesh.problem = None, f"{err}; showing the texture alone"
    if term is not None and mesh.uv is not None and mesh.image is not None:
        mesh.view_term = term
    return mesh


def _load(path: Path) -> LoadedMesh:
    import trimesh

    is_ply = path.suffix.lower() == ".ply"
    if not is_ply:
        parts = _placed_parts(trimesh.load(path))
        # each part where its node puts it, with the file's own normals (force="mesh" below recomputes them:
        # copies of a vertex along a UV seam then disagree, and Lit shows creases), and the background apart
        if parts:
            back = parts.pop(BACKGROUND) if len(parts) > 1 and BACKGROUND in parts else None
            if len(parts) == 1:
                main = _placed(*next(iter(parts.values())))
            else:  # several parts of another tool's file: one mesh (trimesh joins their textures)
                joined: Any = trimesh.util.concatenate([_moved(*part) for part in parts.values()])
                main = _with_appearance(joined, np.asarray(joined.vertices, np.float32))
            main.background = None if back is None else _placed(*back)
            return main
    loaded: Any = trimesh.load(path, force="mesh" if not is_ply else None)
    verts = np.asarray(loaded.vertices, np.float64)
    verts = (_z_up_to_y_up(verts) if is_ply else verts).astype(np.float32)
    if isinstance(loaded, trimesh.PointCloud):
        colors = np.asarray(loaded.colors)[:, :3] / 255.0 if len(loaded.colors) else None
        return LoadedMesh(verts, None, colors=None if colors is None else colors.astype(np.float32))
    return _with_appearance(loaded, verts)


def _placed_parts(scene: Any) -> dict[str, tuple[Any, np.ndarray]]:
    """name -> (trimesh mesh, its node's 4x4 transform) of a Scene; empty unless it is a Scene of triangle meshes."""
    import trimesh

    parts: dict[str, tuple[Any, np.ndarray]] = {}
    for node in getattr(getattr(scene, "graph", None), "nodes_geometry", []):
        transform, name = scene.graph.get(node)
        if not isinstance(scene.geometry[name], trimesh.Trimesh) or name in parts:
            return {}
        parts[name] = (scene.geometry[name], np.asarray(transform, np.float64))
    return parts


def _moved(mesh: Any, transform: np.ndarray) -> Any:
    """A copy of a part where its node puts it, with the file's normals turned along (trimesh's
    ``apply_transform``: the inverse transpose, and faces flipped under a mirror; a decoded meshopt file carries
    its quantisation there, an export's own transforms are identity)."""
    return mesh.copy(include_cache=True).apply_transform(transform)


def _placed(mesh: Any, transform: np.ndarray) -> LoadedMesh:
    moved = _moved(mesh, transform)
    return _with_appearance(moved, np.asarray(moved.vertices, np.float32))


def _with_appearance(mesh: Any, verts: np.ndarray) -> LoadedMesh:
    out = LoadedMesh(verts, np.asarray(mesh.faces, np.uint32))
    out.normals = np.asarray(mesh.vertex_normals, np.float32)
    visual = mesh.visual
    if visual.kind == "texture" and getattr(visual, "uv", None) is not None:
        material = visual.material
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        if image is not None:
            out.uv, out.image = np.asarray(visual.uv, np.float32), np.asarray(image.convert("RGB"))
        bumps = getattr(material, "normalTexture", None)  # glTF's; trimesh reads none from OBJ
        if bumps is not None:
            out.normal_image = np.asarray(bumps.convert("RGB"))
    elif visual.kind == "vertex":
        out.colors = (np.asarray(visual.vertex_colors)[:, :3] / 255.0).astype(np.float32)
    return out


class MeshViewer(PanelMixin, ipywidgets.VBox):
    """Orbit view of a mesh file with a wireframe toggle and counts. ``show(path)`` swaps the file."""

    def __init__(self, path: str | Path | None = None, *, context: Any = None, width: int = 640, height: int = 480):
        self.width, self.height = width, height
        self.wireframe = ipywidgets.ToggleButton(value=False, description="Wireframe", icon="cube")
        self.lit = ipywidgets.ToggleButton(value=False, description="Lit", icon="lightbulb-o",
                                           tooltip="shade with a light (and the file's normal map)")
        self.shine = ipywidgets.ToggleButton(value=True, description="Shine", icon="sun-o",
                                             tooltip="colour that changes with the view, as the photos saw it "
                                                     "(off: the texture alone, as other programs show it)")
        self.shine.layout.display = "none"
        self.counts = ipywidgets.HTML("")
        self.notice = Notice()
        self.view = ipywidgets.Box()
        self.material: Any = None
        self.geometry: Any = None
        self.background_mesh: Any = None  # the file's background part, when it has one
        self.mesh: LoadedMesh | None = None
        self.object: Any = None  # the pythreejs Mesh or Points of the object
        self._maps: dict[str, Any] = {}
        self.wireframe.observe(self._on_wireframe, "value")
        self.lit.observe(lambda _c: self._restyle(), "value")
        self.shine.observe(lambda _c: self._restyle(), "value")
        self.compare = ComparisonView()
        super().__init__([ipywidgets.HBox([self.wireframe, self.lit, self.shine, self.counts]), self.notice, self.view,
                          self.compare])
        self.add_class("nw-mesh-viewer")
        self.bind(context)
        if path is not None:
            self.show(path)

    def show(self, path: str | Path) -> bool:
        """Load and display ``path``; errors are shown inline. Returns whether it worked."""
        try:
            mesh = load_mesh_file(path)
        except Exception as err:  # noqa: BLE001 - shown to the person, never raised into the cell
            self.notice.error(error_message(err))
            return False
        self.notice.clear()
        if mesh.problem:
            self.notice.info(mesh.problem)
        self.view.children = [self._renderer(mesh)]
        faces = 0 if mesh.faces is None else len(mesh.faces)
        kind = "points" if mesh.faces is None else "vertices"
        self.counts.value = f"<b>{esc(Path(path).name)}</b>: {len(mesh.verts):,} {kind}, {faces:,} faces"
        if mesh.background is not None and mesh.background.faces is not None:
            self.counts.value += f"; background {len(mesh.background.faces):,} faces"
        if mesh.normal_image is not None:
            self.counts.value += "; normal map (see it with Lit)"
        if mesh.view_term is not None:
            self.counts.value += "; view-dependent colour (Shine)"
        self.lit.disabled = mesh.faces is None
        self.shine.layout.display = None if mesh.view_term is not None else "none"
        self.compare.load(read_export_comparison(path))
        return True

    def _on_wireframe(self, change: dict) -> None:
        if self.material is not None and hasattr(self.material, "wireframe"):
            self.material.wireframe = bool(change["new"])

    def _restyle(self) -> None:
        """The object's material for the Lit toggle (unlit baked colour, or lit with the normal map)."""
        if self.mesh is None or self.mesh.faces is None or self.object is None:
            return
        self.material = _material(self.mesh, self.wireframe.value, lit=self.lit.value, maps=self._maps,
                                  shine=self.shine.value)
        self.object.material = self.material

    def _renderer(self, mesh: LoadedMesh) -> Any:
        import pythreejs as p3

        self.mesh = mesh
        self._maps = _maps(mesh)  # made once: a toggle does not send the images to the browser again
        self.geometry = _geometry(mesh)
        if mesh.faces is None:
            self.material = p3.PointsMaterial(size=0.005, vertexColors="VertexColors" if mesh.colors is not None else "NoColors")
            obj: Any = p3.Points(self.geometry, self.material)
        else:
            self.material = _material(mesh, self.wireframe.value, lit=self.lit.value, maps=self._maps,
                                      shine=self.shine.value)
            obj = p3.Mesh(self.geometry, self.material)
        self.object = obj
        center = (mesh.verts.min(0) + mesh.verts.max(0)) / 2
        radius = float(np.linalg.norm(mesh.verts.max(0) - mesh.verts.min(0))) / 2 or 1.0
        far = radius * 100
        children = [obj]
        self.background_mesh = None
        if mesh.background is not None and mesh.background.faces is not None:
            material = _material(mesh.background, False, side="FrontSide")  # seen from outside: culled
            self.background_mesh = p3.Mesh(_geometry(mesh.background), material)
            children.append(self.background_mesh)
            far = max(far, 4 * float(np.linalg.norm(mesh.background.verts - center, axis=1).max()))
        headlight = p3.DirectionalLight(position=[0.0, 0.0, 1.0], intensity=0.6)  # lights Lit from the camera
        camera = p3.PerspectiveCamera(position=(center + np.array([0.0, 0.5, 2.2]) * radius).tolist(), fov=45,
                                      aspect=self.width / self.height, near=radius / 100, far=far, children=[headlight])
        # unlit materials ignore lights; Lit ones get a soft fill and the headlight
        scene = p3.Scene(children=[*children, camera, p3.AmbientLight(intensity=0.5)], background="#ffffff")
        controls = p3.OrbitControls(controlling=camera, target=center.tolist())
        camera.lookAt(center.tolist())
        return p3.Renderer(camera=camera, scene=scene, controls=[controls], width=self.width, height=self.height)


class ComparisonView(ipywidgets.VBox):
    """Photo | field render | mesh render of one view with both PSNRs; a view picker when there are several."""

    def __init__(self) -> None:
        self.index: dict[str, Any] | None = None
        self.summary = ipywidgets.HTML("")
        self.picker = ipywidgets.Dropdown(description="View", layout=ipywidgets.Layout(width="260px"))
        self.images = {k: ipywidgets.Image(format="png", layout=ipywidgets.Layout(width="200px"))
                       for k in ("photo", "field", "mesh")}
        self.captions = {k: ipywidgets.HTML("") for k in self.images}
        cells = [ipywidgets.VBox([self.images[k], self.captions[k]]) for k in self.images]
        for kind, cell in zip(self.images, cells, strict=True):
            cell.add_class(f"nw-compare-{kind}")
        self.picker.observe(lambda change: self._select(change["new"]), "value")
        super().__init__([self.summary, self.picker, ipywidgets.HBox(cells)])
        self.add_class("nw-mesh-compare")
        self.layout.display = "none"

    def load(self, index: dict[str, Any] | None) -> None:
        """Show a comparison index (``studio.catalog.read_export_comparison``), or hide when there is none."""
        self.index = index
        if not index or not index.get("views"):
            self.layout.display = "none"
            return
        views = index["views"]
        self.picker.options = [(v["name"], k) for k, v in enumerate(views)]
        self.picker.layout.display = None if len(views) > 1 else "none"
        self.layout.display = None
        self.picker.value = 0
        self._select(0)

    def _select(self, k: int | None) -> None:
        if self.index is None or k is None:
            return
        view = self.index["views"][k]
        for kind in self.images:
            self.images[kind].value = Path(view[kind]).read_bytes()
        field, mesh = view["field_psnr"], view["mesh_psnr"]
        self.captions["photo"].value = f"Photo <i>{esc(view['name'])}</i>"
        self.captions["field"].value = f"Field <b>{field:.2f} dB</b>"
        self.captions["mesh"].value = f"Mesh <b>{mesh:.2f} dB</b> ({view['coverage']:.0%} covered)"
        n = len(self.index["views"])
        mean = (f" &middot; mean over {n} views: field {self.index['field_psnr']:.2f} dB, mesh "
                f"{self.index['mesh_psnr']:.2f} dB" if n > 1 and self.index.get("gap_db") is not None else "")
        gap = field - mesh
        lost = (f"the mesh is <b>{gap:.2f} dB below</b> the field" if gap >= 0
                else f"the mesh is <b>{-gap:.2f} dB above</b> the field (its texture was fitted to the photos)")
        self.summary.value = f"<b>Mesh vs field</b> on this photo: {lost}{mean}"


def _geometry(mesh: LoadedMesh) -> Any:
    import pythreejs as p3

    attrs = {"position": p3.BufferAttribute(array=mesh.verts, normalized=False)}
    if mesh.normals is not None:
        attrs["normal"] = p3.BufferAttribute(array=mesh.normals, normalized=False)
    if mesh.uv is not None:
        attrs["uv"] = p3.BufferAttribute(array=mesh.uv, normalized=False)
    if mesh.colors is not None:
        attrs["color"] = p3.BufferAttribute(array=mesh.colors, normalized=False)
    if mesh.faces is not None:
        attrs["index"] = p3.BufferAttribute(array=mesh.faces.reshape(-1), normalized=False)
    return p3.BufferGeometry(attributes=attrs)


def _texture(image: np.ndarray) -> Any:
    import pythreejs as p3

    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    return p3.DataTexture(data=np.ascontiguousarray(rgba[::-1]), format="RGBAFormat", type="UnsignedByteType",
                          magFilter="LinearFilter", minFilter="LinearFilter")


def _maps(mesh: LoadedMesh) -> dict[str, Any]:
    """The mesh's textures as three.js material slots: "map" (colour) and "normalMap"; with a view term the colour
    travels in its atlas instead ("atlas", see ``shine``), and "map" is made when Lit first asks for it."""
    if mesh.view_term is not None and mesh.image is not None and mesh.uv is not None:
        atlas = Atlas.pack(mesh.image, mesh.view_term.images())
        maps = {"atlas": atlas, "atlas_texture": _texture(atlas.image)}
    else:
        maps = {"map": _texture(mesh.image)} if mesh.image is not None and mesh.uv is not None else {}
    if mesh.normal_image is not None and mesh.uv is not None:
        maps["normalMap"] = _texture(mesh.normal_image)
    return maps


def _material(mesh: LoadedMesh, wireframe: bool, side: str = "DoubleSide", lit: bool = False,
              maps: dict[str, Any] | None = None, shine: bool = True) -> Any:
    import pythreejs as p3

    maps = _maps(mesh) if maps is None else maps
    if not lit and "atlas" in maps:
        return shine_material(maps["atlas"], maps["atlas_texture"], mesh.view_term, shine, wireframe, side)
    if lit and "atlas" in maps and "map" not in maps and mesh.image is not None:
        maps["map"] = _texture(mesh.image)  # kept: the toggle does not send it again
    if lit:  # three.js builds the tangent frame from the UVs' screen derivatives: +Y along +v, as the map's
        extra = {k: v for k, v in maps.items() if k in ("map", "normalMap")}
        if "map" not in maps and mesh.colors is not None:
            extra["vertexColors"] = "VertexColors"
        return p3.MeshStandardMaterial(roughness=1.0, metalness=0.0, wireframe=wireframe, side=side, **extra)
    if "map" in maps:
        return p3.MeshBasicMaterial(map=maps["map"], wireframe=wireframe, side=side)
    if mesh.colors is not None:
        return p3.MeshBasicMaterial(vertexColors="VertexColors", wireframe=wireframe, side=side)
    return p3.MeshNormalMaterial(wireframe=wireframe, side=side)
