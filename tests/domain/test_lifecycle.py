"""The lifecycle table: every legal transition, illegal ones refused with a useful message, history kept."""

from __future__ import annotations

import pytest

from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.domain import lifecycle
from nerf_widgets.domain.lifecycle import State, allowed_transitions, next_state

S = State
LEGAL = [
    (S.CREATED, "upload_images", S.IMAGES_UPLOADED),
    (S.IMAGES_UPLOADED, "upload_images", S.IMAGES_UPLOADED),
    (S.POSES_ESTIMATED, "upload_images", S.IMAGES_UPLOADED),
    (S.IMAGES_UPLOADED, "estimate_poses", S.POSES_ESTIMATED),
    (S.IMAGES_UPLOADED, "manual_poses", S.POSES_ESTIMATED),
    (S.IMAGES_UPLOADED, "skip_pose_estimation", S.POSES_ESTIMATED),
    (S.POSES_ESTIMATED, "estimate_poses", S.POSES_ESTIMATED),
    (S.POSES_ESTIMATED, "start_training", S.TRAINING_STARTED),
    (S.TRAINING_STARTED, "training_progress", S.TRAINING_IN_PROGRESS),
    (S.TRAINING_IN_PROGRESS, "training_completed", S.TRAINING_COMPLETED),
    (S.TRAINING_STARTED, "training_failed", S.TRAINING_FAILED),
    (S.TRAINING_IN_PROGRESS, "training_failed", S.TRAINING_FAILED),
    (S.TRAINING_FAILED, "retry", S.TRAINING_STARTED),
    (S.TRAINING_FAILED, "abandon", S.ABANDONED),
    (S.TRAINING_COMPLETED, "export", S.MODEL_EXPORTED),
    (S.MODEL_EXPORTED, "re_export", S.MODEL_EXPORTED),
    (S.TRAINING_COMPLETED, "retrain", S.TRAINING_STARTED),
    (S.MODEL_EXPORTED, "retrain", S.TRAINING_STARTED),
    (S.TRAINING_IN_PROGRESS, "training_cancelled", S.POSES_ESTIMATED),
    (S.TRAINING_IN_PROGRESS, "training_stopped", S.TRAINING_COMPLETED),
    (S.IMAGES_UPLOADED, "images_cleared", S.CREATED),
]


@pytest.mark.parametrize(("src", "name", "dst"), LEGAL)
def test_legal_transitions(src: State, name: str, dst: State) -> None:
    assert next_state(src, name) is dst


@pytest.mark.parametrize(
    ("src", "name"),
    [
        (S.CREATED, "estimate_poses"),
        (S.CREATED, "start_training"),
        (S.IMAGES_UPLOADED, "start_training"),
        (S.TRAINING_IN_PROGRESS, "upload_images"),
        (S.TRAINING_COMPLETED, "abandon"),
        (S.ABANDONED, "retry"),
        (S.POSES_ESTIMATED, "export"),
        (S.TRAINING_STARTED, "retry"),
    ],
)
def test_illegal_transitions_name_state_and_next_steps(src: State, name: str) -> None:
    with pytest.raises(StateConflictError) as info:
        next_state(src, name)
    msg = str(info.value)
    assert src.value in msg
    for step in allowed_transitions(src):
        assert step in msg
    assert info.value.details["allowed"] == allowed_transitions(src)


def test_abandoned_is_final_and_unknown_names_rejected() -> None:
    assert allowed_transitions(S.ABANDONED) == []
    with pytest.raises(ValidationError, match="Unknown lifecycle transition"):
        next_state(S.CREATED, "teleport")


def test_every_state_is_reachable_from_created() -> None:
    reached, frontier = {S.CREATED}, [S.CREATED]
    while frontier:
        state = frontier.pop()
        for name in allowed_transitions(state):
            dst = next_state(state, name)
            if dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(State)


def test_transition_records_history_in_the_database(studio, project) -> None:  # type: ignore[no-untyped-def]
    db = studio.db
    with pytest.raises(StateConflictError):
        lifecycle.transition(db=db, project_id=project.id, name="start_training", reason="too early")
    lifecycle.transition(db=db, project_id=project.id, name="upload_images", reason="3 photos")
    lifecycle.transition(db=db, project_id=project.id, name="skip_pose_estimation", reason="blender scene")
    assert project.state == "PosesEstimated"
    rows = [(h.from_state, h.to_state, h.transition, h.reason) for h in project.history]
    assert rows == [
        (None, "Created", "create", "project created"),
        ("Created", "ImagesUploaded", "upload_images", "3 photos"),
        ("ImagesUploaded", "PosesEstimated", "skip_pose_estimation", "blender scene"),
    ]
    assert all(h.created_at > 1.7e9 for h in project.history)
