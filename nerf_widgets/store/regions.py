"""Region-of-interest rows: ``verb_noun(*, db, ...)`` repository functions.

One row per project: ``proposed`` is the poses layer's proposal, ``region`` the box a person set (or an
imported ``aabb``); both are JSON of ``core.region.Region.to_dict``. ``poses_key`` names the poses both were
made for (transforms.json's size and modification time): a box set for earlier poses does not apply to new
ones, whose normalisation differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nerf_widgets.store.db import Database, utc_now

__all__ = ["RegionRow", "clear_region", "get_region_row", "save_proposal", "save_region"]


@dataclass(frozen=True)
class RegionRow:
    project_id: str
    region: dict[str, Any] | None
    proposed: dict[str, Any] | None
    poses_key: str
    updated_at: float


def get_region_row(*, db: Database, project_id: str) -> RegionRow | None:
    row = db.query_one("SELECT * FROM regions WHERE project_id = ?", (project_id,))
    if row is None:
        return None
    return RegionRow(row["project_id"], json.loads(row["region_json"]) if row["region_json"] else None,
                     json.loads(row["proposed_json"]) if row["proposed_json"] else None, row["poses_key"],
                     row["updated_at"])


def save_proposal(*, db: Database, project_id: str, proposed: dict[str, Any], poses_key: str) -> None:
    """Store the proposal for ``poses_key``; a person's box made for other poses is dropped."""
    db.execute(
        "INSERT INTO regions (project_id, region_json, proposed_json, poses_key, updated_at) VALUES (?, NULL, ?, ?, ?) "
        "ON CONFLICT (project_id) DO UPDATE SET proposed_json = excluded.proposed_json, updated_at = excluded.updated_at, "
        "region_json = CASE WHEN regions.poses_key = excluded.poses_key THEN regions.region_json END, "
        "poses_key = excluded.poses_key",
        (project_id, json.dumps(proposed), poses_key, utc_now()))


def save_region(*, db: Database, project_id: str, region: dict[str, Any], poses_key: str) -> None:
    """Store the person's box (the proposal is kept for ``reset``)."""
    db.execute(
        "INSERT INTO regions (project_id, region_json, proposed_json, poses_key, updated_at) VALUES (?, ?, NULL, ?, ?) "
        "ON CONFLICT (project_id) DO UPDATE SET region_json = excluded.region_json, updated_at = excluded.updated_at, "
        "proposed_json = CASE WHEN regions.poses_key = excluded.poses_key THEN regions.proposed_json END, "
        "poses_key = excluded.poses_key",
        (project_id, json.dumps(region), poses_key, utc_now()))


def clear_region(*, db: Database, project_id: str) -> None:
    """Forget the person's box (the proposal stays)."""
    db.execute("UPDATE regions SET region_json = NULL, updated_at = ? WHERE project_id = ?", (utc_now(), project_id))
