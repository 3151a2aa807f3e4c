"""How many items a pass of the engine may take to end within a time budget, from what the
last passes cost: pure (the caller measures the time).

A fire pass is one transaction; whatever comes due while it runs waits for its commit. When
several namespaces share the engine, bounding a pass in time (not in count: the cost of a
fire varies tenfold with the machine's load) bounds how long one namespace's fire waits
behind another's.
"""

from __future__ import annotations

from dataclasses import dataclass

from cronwheel.domain.time import Micros


@dataclass(slots=True)
class Pace:
    budget_us: Micros  # how long one pass should take
    floor: int  # never fewer than this a pass: a slow store still makes progress
    cost_us: float = 100.0  # estimated µs per item, learned from the passes measured
    weight: float = 0.3  # of the newest measurement in the estimate

    def size(self) -> int:
        """Items a pass may take now."""
        return max(self.floor, int(self.budget_us / max(self.cost_us, 1e-3)))

    def observe(self, items: int, elapsed_us: float) -> None:
        """A pass of `items` took `elapsed_us`. A pass smaller than the floor is not counted:
        its fixed cost (the commit) would read as a high cost per item."""
        if items >= max(1, self.floor):
            per_item = elapsed_us / items
            self.cost_us += self.weight * (per_item - self.cost_us)
