"""ExportPanel's size presets and refinement minutes: what the widgets pass to ``project.export``."""

from __future__ import annotations

from nerf_widgets.export.request import DEFAULT_REFINE_MINUTES, PRESETS
from nerf_widgets.widgets.export_panel import ExportPanel


def test_a_preset_fills_the_sizes_and_is_recorded() -> None:
    panel = ExportPanel()
    assert panel.size.value == "custom" and panel.refine.value == DEFAULT_REFINE_MINUTES
    assert panel.options()["refine_minutes"] is None  # the default: refined only when the run has its photos
    panel.size.value = "web"
    web = PRESETS["web"]
    assert (panel.faces.value, panel.texture.value, panel.refine.value) == (web["faces"], web["texture"],
                                                                            web["refine_minutes"])
    options = panel.options()
    assert options["preset"] == "web" and options["faces"] == web["faces"]
    assert options["refine_minutes"] is None  # the preset's minutes, when the run has its photos
    panel.refine.value = 2.0
    assert panel.options()["refine_minutes"] == 2.0 and panel.size.value == "custom"  # asked for: needs photos
    panel.size.value = "archive"
    assert panel.options()["faces"] == PRESETS["archive"]["faces"] and panel.texture.value == 4096
    panel.close()


def test_editing_a_size_makes_it_custom() -> None:
    panel = ExportPanel()
    panel.size.value = "game"
    panel.faces.value = 12_345
    assert panel.size.value == "custom" and panel.options()["preset"] is None
    assert panel.options()["faces"] == 12_345  # the edit stands
    panel.close()


def test_without_a_texture_nothing_is_refined() -> None:
    panel = ExportPanel()
    panel.size.value = "game"
    panel.format.value = "ply"  # no texture in a PLY
    assert panel.refine.disabled and panel.options()["refine_minutes"] == 0.0
    assert panel.size.value == "game"  # faces and texture still the preset's
    panel.format.value = "glb"
    assert not panel.refine.disabled and panel.refine.value == PRESETS["game"]["refine_minutes"]
    panel.texture.value = 0  # per-vertex colours
    assert panel.refine.disabled and panel.options()["refine_minutes"] == 0.0 and panel.size.value == "custom"
    panel.close()


def test_the_normal_map_choice_reaches_the_request() -> None:
    """auto follows the size (the game preset makes one); with / without ask; no texture, no choice."""
    from nerf_widgets.export.request import make_request

    box = [[-1, -1, -1], [1, 1, 1]]
    panel = ExportPanel()

    def request():  # type: ignore[no-untyped-def]
        options = {k: v for k, v in panel.options().items() if k != "region"}
        return make_request(panel.format.value, f"model.{panel.format.value}", box, **options)

    assert panel.options()["normal_map"] is None and not request().wants_normal_map()
    panel.size.value = "game"
    assert request().wants_normal_map()
    panel.normal_map.value = "without"
    assert not request().wants_normal_map() and panel.size.value == "game"  # not a size: the preset stays
    panel.size.value = "custom"
    panel.normal_map.value = "with"
    assert request().wants_normal_map()
    panel.format.value = "ply"
    assert panel.normal_map.disabled and panel.options()["normal_map"] is None and not request().wants_normal_map()
    panel.close()


def test_the_shine_choice_reaches_the_request() -> None:
    """auto: a refined glb/gltf gets the view-dependent colour, the web preset not; with / without ask; a format or a
    compression that cannot carry it disables the choice."""
    from nerf_widgets.export.request import make_request

    box = [[-1, -1, -1], [1, 1, 1]]
    panel = ExportPanel()

    def seconds() -> float:
        options = {k: v for k, v in panel.options().items() if k != "region"}
        return make_request(panel.format.value, f"model.{panel.format.value}", box, **options).view_term_budget(True)

    assert panel.options()["view_dependence"] is None and seconds() > 0
    panel.size.value = "web"
    assert seconds() == 0
    panel.view_dependence.value = "with"
    assert seconds() > 0 and panel.size.value == "web"
    panel.view_dependence.value = "without"
    panel.size.value = "custom"
    assert seconds() == 0
    panel.view_dependence.value = "with"
    panel.compress.value = "draco"
    assert panel.view_dependence.disabled and panel.options()["view_dependence"] is None and seconds() == 0
    panel.compress.value = "none"
    assert not panel.view_dependence.disabled and seconds() > 0
    panel.refine.value = 0.0  # nothing refined, nothing to fit the term on
    assert panel.view_dependence.disabled and panel.options()["view_dependence"] is None and seconds() == 0
    panel.refine.value = 1.0
    panel.format.value = "obj"
    assert panel.view_dependence.disabled and panel.options()["view_dependence"] is None and seconds() == 0
    panel.close()
