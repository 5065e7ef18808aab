"""The job state machine: the only module that decides which job state may follow which.

States are a ``str`` Enum stored as text in the ``jobs`` table (rq's habit), so a row reads the
same in SQL and in Python. An attempt (one run of a job on one thread of one kernel) is kept
apart from the job: retry and resume add attempts, the job keeps its id.
"""

from __future__ import annotations

from enum import Enum

from nerf_widgets.core.errors import StateConflictError

__all__ = ["ACTIVE", "INTERRUPTED", "TERMINAL", "JobState", "check_transition", "is_interrupted", "JobType"]


class JobState(str, Enum):
    QUEUED = "queued"
    WAITING_FOR_RESOURCES = "waiting_for_resources"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class JobType(str, Enum):
    ESTIMATE_POSES = "estimate_poses"
    TRAIN = "train"
    EXPORT = "export"

    def __str__(self) -> str:
        return self.value


INTERRUPTED = "Interrupted:"  # how the runner's recovery starts the error of a job whose kernel stopped


def is_interrupted(state: str, error: str | None) -> bool:
    """A failed job whose kernel stopped under it (found by ``JobRunner.recover_interrupted``), not a failure of its own."""
    return state == JobState.FAILED.value and (error or "").startswith(INTERRUPTED)


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE = frozenset({JobState.QUEUED, JobState.WAITING_FOR_RESOURCES, JobState.RUNNING, JobState.PAUSED})

_S = JobState
_NEXT: dict[JobState, frozenset[JobState]] = {
    _S.QUEUED: frozenset({_S.WAITING_FOR_RESOURCES, _S.RUNNING, _S.CANCELLED, _S.FAILED}),
    _S.WAITING_FOR_RESOURCES: frozenset({_S.RUNNING, _S.CANCELLED, _S.FAILED}),
    _S.RUNNING: frozenset({_S.PAUSED, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
    _S.PAUSED: frozenset({_S.RUNNING, _S.CANCELLED, _S.FAILED, _S.SUCCEEDED}),  # finished as it was paused
    # retry (failed/cancelled) and resume after a crash start a new attempt from the queue
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.CANCELLED: frozenset({_S.QUEUED}),
    _S.SUCCEEDED: frozenset(),
}

_VERB = {_S.PAUSED: "pause", _S.RUNNING: "resume", _S.CANCELLED: "cancel", _S.QUEUED: "retry"}


def check_transition(current: JobState | str, target: JobState | str, *, job_id: str = "") -> JobState:
    """Return ``target`` as a JobState, or raise a StateConflictError naming the allowed next states."""
    cur, nxt = JobState(current), JobState(target)
    if nxt not in _NEXT[cur]:
        allowed = ", ".join(sorted(s.value for s in _NEXT[cur])) or "none (the job is finished)"
        verb = _VERB.get(nxt, f"move to {nxt.value}")
        raise StateConflictError(
            f"Cannot {verb} job {job_id or ''} while it is {cur.value}; allowed next states: {allowed}.".replace("  ", " "),
            job_id=job_id,
            state=cur.value,
            target=nxt.value,
        )
    return nxt
