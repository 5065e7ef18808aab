"""The project state machine: the ONLY place that decides and records project state changes.

The table (``TRANSITIONS``, ``next_state``) is plain Python. Other layers call ``transition(db=...,
project_id=..., name=..., reason=...)``; it checks the table, then updates ``projects.state`` and appends a
``state_history`` row through the store's repositories in one ``BEGIN IMMEDIATE`` transaction, so two
kernels cannot both start training the same project from the same state.

Transitions (name: from -> to). The seed's diagram, plus what a real user needs (marked +):

    upload_images         Created | ImagesUploaded | PosesEstimated(+) -> ImagesUploaded
                          (adding images after poses invalidates them: poses must be estimated again)
    images_removed     +  ImagesUploaded | PosesEstimated -> ImagesUploaded   (some removed, poses invalidated)
    images_cleared     +  ImagesUploaded | PosesEstimated -> Created          (the last image was removed)
    estimate_poses        ImagesUploaded -> PosesEstimated; + re-estimate from PosesEstimated, TrainingFailed,
                          TrainingInterrupted, TrainingCompleted, ModelExported (bad poses are a common cause of a
                          failed or poor run)
    manual_poses          same sources as estimate_poses -> PosesEstimated (poses imported from a file)
    skip_pose_estimation  ImagesUploaded -> PosesEstimated (the images came with poses, e.g. a Blender scene)
    start_training        PosesEstimated -> TrainingStarted
    retrain            +  TrainingCompleted | ModelExported -> TrainingStarted
    retry                 TrainingFailed | TrainingInterrupted(+) -> TrainingStarted (from TrainingInterrupted: a new job)
    training_progress     TrainingStarted -> TrainingInProgress (first reported step)
    training_completed    TrainingInProgress | TrainingStarted(+, a run too short to report progress) -> TrainingCompleted
    training_failed       TrainingStarted | TrainingInProgress -> TrainingFailed
    training_interrupted + TrainingStarted | TrainingInProgress -> TrainingInterrupted
                          (the kernel running the job stopped: found by the jobs layer's recovery)
    resume_training    +  TrainingInterrupted -> TrainingStarted (the interrupted job continues from its checkpoint)
    training_cancelled +  TrainingStarted | TrainingInProgress -> PosesEstimated
                          (stopped by the user and no usable model exists: back to where training can start)
    training_stopped   +  TrainingStarted | TrainingInProgress -> TrainingCompleted
                          (stopped by the user but a usable checkpoint exists, from this run or an earlier one;
                          the jobs layer decides which of the two applies)
    abandon               TrainingFailed | TrainingInterrupted(+) -> Abandoned (terminal; the project can still be
                          deleted)
    export                TrainingCompleted -> ModelExported
    re_export          +  ModelExported -> ModelExported
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database


class State(str, Enum):
    """Project states; the value is what the database stores and widgets show."""

    CREATED = "Created"
    IMAGES_UPLOADED = "ImagesUploaded"
    POSES_ESTIMATED = "PosesEstimated"
    TRAINING_STARTED = "TrainingStarted"
    TRAINING_IN_PROGRESS = "TrainingInProgress"
    TRAINING_COMPLETED = "TrainingCompleted"
    TRAINING_FAILED = "TrainingFailed"
    TRAINING_INTERRUPTED = "TrainingInterrupted"
    MODEL_EXPORTED = "ModelExported"
    ABANDONED = "Abandoned"

    def __str__(self) -> str:
        return self.value


INITIAL_STATE = State.CREATED


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[State]
    target: State


def _t(name: str, sources: tuple[State, ...], target: State) -> tuple[str, Transition]:
    return name, Transition(name, frozenset(sources), target)


S = State
_POSE_SOURCES = (S.IMAGES_UPLOADED, S.POSES_ESTIMATED, S.TRAINING_FAILED, S.TRAINING_INTERRUPTED,
                 S.TRAINING_COMPLETED, S.MODEL_EXPORTED)
_TRAINING = (S.TRAINING_STARTED, S.TRAINING_IN_PROGRESS)
TRAINING_STATES = frozenset(_TRAINING)  # a training job should be running (or queued) while the project is here

TRANSITIONS: dict[str, Transition] = dict(
    [
        _t("upload_images", (S.CREATED, S.IMAGES_UPLOADED, S.POSES_ESTIMATED), S.IMAGES_UPLOADED),
        _t("images_removed", (S.IMAGES_UPLOADED, S.POSES_ESTIMATED), S.IMAGES_UPLOADED),
        _t("images_cleared", (S.IMAGES_UPLOADED, S.POSES_ESTIMATED), S.CREATED),
        _t("estimate_poses", _POSE_SOURCES, S.POSES_ESTIMATED),
        _t("manual_poses", _POSE_SOURCES, S.POSES_ESTIMATED),
        _t("skip_pose_estimation", (S.IMAGES_UPLOADED,), S.POSES_ESTIMATED),
        _t("start_training", (S.POSES_ESTIMATED,), S.TRAINING_STARTED),
        _t("retrain", (S.TRAINING_COMPLETED, S.MODEL_EXPORTED), S.TRAINING_STARTED),
        _t("retry", (S.TRAINING_FAILED, S.TRAINING_INTERRUPTED), S.TRAINING_STARTED),
        _t("resume_training", (S.TRAINING_INTERRUPTED,), S.TRAINING_STARTED),
        _t("training_progress", (S.TRAINING_STARTED,), S.TRAINING_IN_PROGRESS),
        _t("training_completed", _TRAINING, S.TRAINING_COMPLETED),
        _t("training_failed", _TRAINING, S.TRAINING_FAILED),
        _t("training_interrupted", _TRAINING, S.TRAINING_INTERRUPTED),
        _t("training_cancelled", _TRAINING, S.POSES_ESTIMATED),
        _t("training_stopped", _TRAINING, S.TRAINING_COMPLETED),
        _t("abandon", (S.TRAINING_FAILED, S.TRAINING_INTERRUPTED), S.ABANDONED),
        _t("export", (S.TRAINING_COMPLETED,), S.MODEL_EXPORTED),
        _t("re_export", (S.MODEL_EXPORTED,), S.MODEL_EXPORTED),
    ]
)


def allowed_transitions(state: State | str) -> list[str]:
    """Names of the transitions possible from ``state``, in table order."""
    state = State(state)
    return [t.name for t in TRANSITIONS.values() if state in t.sources]


def next_state(state: State | str, name: str) -> State:
    """The state ``name`` leads to from ``state``; ``StateConflictError`` if it is not allowed there."""
    try:
        spec = TRANSITIONS[name]
    except KeyError:
        raise ValidationError(f"Unknown lifecycle transition {name!r}; known: {', '.join(TRANSITIONS)}.") from None
    state = State(state)
    if state not in spec.sources:
        allowed = allowed_transitions(state)
        sources = ", ".join(s.value for s in State if s in spec.sources)
        raise StateConflictError(
            f"Cannot {name.replace('_', ' ')}: the project is in state {state.value}, and {name} is only possible "
            f"from {sources}. Allowed next steps: {', '.join(allowed) if allowed else 'none (final state)'}.",
            state=state.value,
            transition=name,
            allowed=allowed,
        )
    return spec.target


def check_transition(*, db: Database, project_id: str, name: str) -> State:
    """Raise now if ``name`` is illegal in the project's current state (a pre-check before slow work)."""
    return next_state(project_store.get_project_state(db=db, project_id=project_id), name)


def transition(*, db: Database, project_id: str, name: str, reason: str = "") -> State:
    """Apply transition ``name`` and record it (from, to, name, reason, time); returns the new state."""
    with db.transaction():
        current = project_store.get_project_state(db=db, project_id=project_id)
        target = next_state(current, name)
        project_store.set_project_state(db=db, project_id=project_id, state=target.value)
        project_store.insert_history(
            db=db, project_id=project_id, from_state=current, to_state=target.value, transition=name, reason=reason
        )
    return target


__all__ = [
    "INITIAL_STATE",
    "TRAINING_STATES",
    "TRANSITIONS",
    "State",
    "Transition",
    "allowed_transitions",
    "check_transition",
    "next_state",
    "transition",
]
