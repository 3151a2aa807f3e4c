"""The run state machine (cronwheel.domain.runs)."""

from __future__ import annotations

import itertools

import pytest

from cronwheel.domain.errors import IllegalTransition
from cronwheel.domain.runs import TERMINAL, RunState, check_transition

P, R = RunState.PENDING, RunState.RUNNING
OK, KO = RunState.SUCCEEDED, RunState.FAILED
X, M, SK = RunState.CANCELLED, RunState.MISSED, RunState.SKIPPED
K = RunState.KILLED
W, E = RunState.WAITING, RunState.EXPIRED

# The whole table, written out by hand: every pair not listed here must be refused.
ALLOWED = {
    (P, R),  # an attempt starts
    (P, X),  # cancelled while waiting
    (R, OK),
    (R, KO),  # failed for good
    (R, P),  # failed, a retry is due later
    (R, R),  # a lapsed lease handed to a new owner
    (R, X),
    (P, K),  # killed while waiting for a retry
    (R, K),  # killed while on a worker
    (W, P),  # its dependencies hold: released
    (W, E),  # its job's expiry passed first
    (W, X),  # its job was cancelled with its runs
    (W, K),  # killed before it ever ran
}
REFUSED = sorted(set(itertools.product(RunState, RunState)) - ALLOWED)


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED), ids=str)
def test_allowed(current: RunState, target: RunState) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), REFUSED, ids=str)
def test_refused(current: RunState, target: RunState) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)
    assert str(current) in info.value.message
    assert str(target) in info.value.message


@pytest.mark.parametrize(
    ("current", "target"),
    [(OK, R), (P, OK), (KO, P), (KO, R), (M, R), (X, P), (P, KO), (P, P),
     (W, R), (E, P), (P, W)],  # a waiting run is released before it runs; expired is final
    ids=str,
)
def test_named_examples_are_refused(current: RunState, target: RunState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


def test_terminal_states_go_nowhere() -> None:
    assert frozenset({OK, KO, X, M, SK, K, E}) == TERMINAL
    for current in TERMINAL:
        for target in RunState:
            with pytest.raises(IllegalTransition):
                check_transition(current, target)


def test_table_covers_every_state() -> None:
    assert len(REFUSED) + len(ALLOWED) == len(RunState) ** 2 == 100
