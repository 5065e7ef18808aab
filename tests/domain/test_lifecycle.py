"""The lifecycle table: every legal transition, illegal ones refused with a useful message, history kept."""

from __future__ import annotations

import pytest

from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.domain import lifecycle
from nerf_widgets.domain.lifecycle import State, allowed_transitions, next_state

S = State
_POSES = (S.IMAGES_UPLOADED, S.POSES_ESTIMATED, S.TRAINING_FAILED, S.TRAINING_INTERRUPTED, S.TRAINING_COMPLETED,
          S.MODEL_EXPORTED)
_TRAINING = (S.TRAINING_STARTED, S.TRAINING_IN_PROGRESS)
# The whole table, written out by hand from the module docstring: (state, transition) -> next state.
ALLOWED: dict[tuple[State, str], State] = {
    **{(src, "upload_images"): S.IMAGES_UPLOADED for src in (S.CREATED, S.IMAGES_UPLOADED, S.POSES_ESTIMATED)},
    **{(src, "images_removed"): S.IMAGES_UPLOADED for src in (S.IMAGES_UPLOADED, S.POSES_ESTIMATED)},
    **{(src, "images_cleared"): S.CREATED for src in (S.IMAGES_UPLOADED, S.POSES_ESTIMATED)},
    **{(src, "estimate_poses"): S.POSES_ESTIMATED for src in _POSES},
    **{(src, "manual_poses"): S.POSES_ESTIMATED for src in _POSES},
    (S.IMAGES_UPLOADED, "skip_pose_estimation"): S.POSES_ESTIMATED,
    (S.POSES_ESTIMATED, "start_training"): S.TRAINING_STARTED,
    **{(src, "retrain"): S.TRAINING_STARTED for src in (S.TRAINING_COMPLETED, S.MODEL_EXPORTED)},
    **{(src, "retry"): S.TRAINING_STARTED for src in (S.TRAINING_FAILED, S.TRAINING_INTERRUPTED)},
    (S.TRAINING_INTERRUPTED, "resume_training"): S.TRAINING_STARTED,
    (S.TRAINING_STARTED, "training_progress"): S.TRAINING_IN_PROGRESS,
    **{(src, "training_completed"): S.TRAINING_COMPLETED for src in _TRAINING},
    **{(src, "training_failed"): S.TRAINING_FAILED for src in _TRAINING},
    **{(src, "training_interrupted"): S.TRAINING_INTERRUPTED for src in _TRAINING},
    **{(src, "training_cancelled"): S.POSES_ESTIMATED for src in _TRAINING},
    **{(src, "training_stopped"): S.TRAINING_COMPLETED for src in _TRAINING},
    **{(src, "abandon"): S.ABANDONED for src in (S.TRAINING_FAILED, S.TRAINING_INTERRUPTED)},
    (S.TRAINING_COMPLETED, "export"): S.MODEL_EXPORTED,
    (S.MODEL_EXPORTED, "re_export"): S.MODEL_EXPORTED,
}
EVERY_MOVE = [(src, name) for src in State for name in lifecycle.TRANSITIONS]
REFUSED = [move for move in EVERY_MOVE if move not in ALLOWED]


def test_the_table_allows_exactly_the_written_moves() -> None:
    table = {(src, t.name): t.target for t in lifecycle.TRANSITIONS.values() for src in t.sources}
    assert table == ALLOWED
    assert len(ALLOWED) == 41 and len(REFUSED) == len(State) * len(lifecycle.TRANSITIONS) - 41


@pytest.mark.parametrize(("src", "name"), list(ALLOWED))
def test_every_allowed_move(src: State, name: str) -> None:
    assert next_state(src, name) is ALLOWED[src, name]
    assert name in allowed_transitions(src)


@pytest.mark.parametrize(("src", "name"), REFUSED)
def test_every_refused_move_names_state_and_next_steps(src: State, name: str) -> None:
    with pytest.raises(StateConflictError, match=f"Cannot {name.replace('_', ' ')}: the project is in state "
                                                 f"{src.value}, and {name} is only possible from") as info:
        next_state(src, name)
    msg = str(info.value)
    for step in allowed_transitions(src):
        assert step in msg
    assert info.value.details["allowed"] == allowed_transitions(src)
    assert name not in allowed_transitions(src)


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
    with pytest.raises(StateConflictError, match="Cannot start training: the project is in state Created"):
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
