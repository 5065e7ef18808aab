"""The project's region of interest: proposal after poses, the person's box, reset, imports (``Project.region`` ...).

The proposal is made from the project's ``poses/`` folder the first time it is asked for after new poses
(the job that wrote them need not know) and kept in the ``regions`` table with the poses it was made for.
A person's box is validated (``core.region``), checked against the cameras (one must see it) and recorded in
the project's history as a ``set_region`` / ``reset_region`` entry that leaves the state as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.core.region import Region, yaw_rotation
from nerf_widgets.poses.region import poses_key
from nerf_widgets.store import projects as project_store
from nerf_widgets.store import regions as region_store

if TYPE_CHECKING:
    from nerf_widgets.studio.project import Project

__all__ = ["current_region", "import_region", "poses_key", "region_option", "reset_region", "set_region",
           "stored_region"]


def _proposal(project: Project, key: str) -> Region:
    from nerf_widgets.poses.region import propose_from_dir

    row = region_store.get_region_row(db=project.db, project_id=project.id)
    if row is not None and row.poses_key == key and row.proposed is not None:
        return Region.from_dict(row.proposed)
    region = propose_from_dir(project.path("poses"))
    region_store.save_proposal(db=project.db, project_id=project.id, proposed=region.to_dict(), poses_key=key)
    return region


def stored_region(project: Project) -> Region | None:
    """The box a person set (or imported) for the current poses, else None."""
    key = poses_key(project.path("poses"))
    row = region_store.get_region_row(db=project.db, project_id=project.id)
    if row is None or row.poses_key != key or row.region is None:
        return None
    return Region.from_dict(row.region)


def current_region(project: Project) -> Region:
    """The person's box when there is one for the current poses, else the proposal (made now if needed)."""
    key = poses_key(project.path("poses"))
    return stored_region(project) or _proposal(project, key)


def _record(project: Project, transition: str, reason: str) -> None:
    state = project_store.get_project_state(db=project.db, project_id=project.id)
    project_store.insert_history(db=project.db, project_id=project.id, from_state=state, to_state=state,
                                 transition=transition, reason=reason)


def _describe(region: Region) -> str:
    c, s = np.round(region.center, 3).tolist(), np.round(region.size, 3).tolist()
    return f"center {c}, size {s}, yaw {region.yaw_deg:.1f} deg, floor {'cut' if region.floor_cut else 'kept'}"


def set_region(project: Project, values: Mapping[str, Any] | Region, *, source: str = "set") -> Region:
    """Validate ``values`` (fields missing from it come from the current region), check a camera sees it, store it."""
    from nerf_widgets.poses.region import check_seen, half_fov_deg, load_cameras

    poses = project.path("poses")
    key = poses_key(poses)
    base = current_region(project).to_dict()
    given = values.to_dict() if isinstance(values, Region) else dict(values)
    if "rotation" not in given and "yaw_deg" in given:  # a turn about the current box's up (the floor normal)
        given["rotation"] = yaw_rotation(float(given["yaw_deg"]), np.asarray(base["rotation"])[:, 2])
    region = Region.from_dict({**base, **given, "source": source})
    c2w, transforms = load_cameras(poses)
    check_seen(region, c2w, half_fov_deg(transforms))
    with project.db.transaction():
        region_store.save_region(db=project.db, project_id=project.id, region=region.to_dict(), poses_key=key)
        _record(project, "set_region", _describe(region))
    return region


def reset_region(project: Project) -> Region:
    """Drop the person's box: the proposal applies again (recorded in the history)."""
    key = poses_key(project.path("poses"))
    with project.db.transaction():
        region_store.clear_region(db=project.db, project_id=project.id)
        _record(project, "reset_region", "back to the proposed region")
    return _proposal(project, key)


def import_region(project: Project, source: Path) -> Region | None:
    """The ``aabb`` of an imported transforms.json as the project's region (moved like the poses), if it has one."""
    from nerf_widgets.poses.region import region_from_aabb

    path = source / "transforms.json" if source.is_dir() else source
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        aabb = json.loads(path.read_text()).get("aabb")
    except (ValueError, AttributeError):
        return None
    if aabb is None:
        return None
    written = json.loads(project.path("poses", "transforms.json").read_text())
    matrix = (written.get("normalization") or {}).get("matrix")
    return set_region(project, region_from_aabb(np.asarray(aabb, np.float64), matrix), source="import")


def region_option(project: Project, value: Any = "auto") -> dict[str, Any] | None:
    """What a training or export request carries as its ``region``.

    ``"auto"``: the box a person set or imported, else none (the whole field); ``True``: the current region
    (set, else proposed); ``None``/``False``: none; a dict or ``Region``: validated and used.
    """
    if value is None or value is False:
        return None
    if value is True:
        return current_region(project).to_dict()
    if isinstance(value, str) and value == "auto":
        try:
            region = stored_region(project)
        except NotFoundError:
            return None
        return region.to_dict() if region is not None else None
    return Region.from_dict(value).to_dict()
