"""When probes run: a pure function of the step (no Lightning, no state).

A :class:`ProbeSchedule` answers two questions for a step ``t`` (``t`` = updates applied so far):

* :meth:`ProbeSchedule.is_probe_step` — run the cheap probes (norms, logit statistics, impurity,
  the ``||<J>||`` family) at ``t``;
* :meth:`ProbeSchedule.is_expensive_step` — also run the expensive ones (sharpness, Gauss–Newton,
  rho_B, input–output Jacobian, generalisation gap) at ``t``.

Rules (a step is due when ANY rule matches, so the rules combine):

* ``every_n_steps = k``: the cheap probes at every multiple of ``k`` (0, k, 2k, ...);
* ``expensive_every_n_steps = K``: the expensive probes at every multiple of ``K``;
* ``at_steps = [...]``: both kinds at each listed step;
* ``log_spaced = N``: both kinds at ``N`` distinct, roughly log-spaced steps of a run of
  ``total_steps`` updates: step 0 and ``N - 1`` steps in ``[1, total_steps]`` ending at
  ``total_steps`` (see :func:`log_spaced_steps`);
* ``at_end``: both kinds at the final step (handled by the callback, which knows when training
  stops; :meth:`ProbeSchedule.is_final_step` is the planned end).

Expensive steps are always probe steps too, so the cheap metrics (e.g. ``||<J>||^2`` for
``lambda_hat``) are available wherever the sharpness is. Because the schedule depends only on the
step, a resumed run probes at exactly the steps an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _optional_positive_int(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"probes.{name} must be a positive integer or null, got {value!r}")
    return int(value)


def log_spaced_steps(num_points: int, total_steps: int) -> list[int]:
    """``num_points`` distinct steps in ``[0, total_steps]``: 0, then ``num_points - 1`` steps
    rounded from a geometric sequence from 1 to ``total_steps`` (each bumped to at least the
    previous step + 1 where rounding would repeat a step, so early steps are consecutive).
    The last step is ``total_steps``."""
    if (
        isinstance(num_points, bool)
        or not isinstance(num_points, (int, np.integer))
        or num_points < 2
    ):
        raise ValueError(f"probes.log_spaced must be an integer >= 2 (or null), got {num_points!r}")
    if (
        isinstance(total_steps, bool)
        or not isinstance(total_steps, (int, np.integer))
        or total_steps < 1
    ):
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    num_points, total_steps = int(num_points), int(total_steps)
    if num_points > total_steps + 1:
        raise ValueError(
            f"probes.log_spaced={num_points} asks for more points than the {total_steps + 1} steps 0..{total_steps} of the run"
        )
    steps = [0]
    if num_points == 2:
        return [0, total_steps]
    ideal = np.geomspace(1.0, float(total_steps), num_points - 1)
    for value in ideal:
        steps.append(max(steps[-1] + 1, int(round(float(value)))))
    # Bumped early steps can only push later ones up where the geometric gaps are < 1; pull any
    # overshoot back from the end so the sequence stays strictly increasing and ends at total_steps.
    steps[-1] = total_steps
    for i in range(len(steps) - 2, 0, -1):
        steps[i] = min(steps[i], steps[i + 1] - 1)
    if steps[1] < 1 or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise AssertionError(f"log_spaced_steps({num_points}, {total_steps}) produced {steps}")
    return steps


class ProbeSchedule:
    """Which steps get cheap / expensive probes (see the module docstring)."""

    def __init__(
        self,
        *,
        total_steps: int,
        every_n_steps: int | None = None,
        expensive_every_n_steps: int | None = None,
        at_steps: Iterable[int] | None = None,
        log_spaced: int | None = None,
    ) -> None:
        if (
            isinstance(total_steps, bool)
            or not isinstance(total_steps, (int, np.integer))
            or total_steps < 1
        ):
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        self.total_steps = int(total_steps)
        self.every_n_steps = _optional_positive_int("every_n_steps", every_n_steps)
        self.expensive_every_n_steps = _optional_positive_int(
            "expensive_every_n_steps", expensive_every_n_steps
        )
        listed: set[int] = set()
        for step in list(at_steps or []):
            if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
                raise ValueError(
                    f"probes.at_steps must be a list of integers >= 0, got {list(at_steps or [])!r}"
                )
            listed.add(int(step))
        self.at_steps = frozenset(listed)
        self.log_spaced = log_spaced
        self.log_steps = (
            frozenset(log_spaced_steps(log_spaced, self.total_steps))
            if log_spaced is not None
            else frozenset()
        )
        if (
            self.every_n_steps is None
            and self.expensive_every_n_steps is None
            and not self.at_steps
            and not self.log_steps
        ):
            raise ValueError(
                "probes schedule is empty: set probes.every_n_steps, probes.expensive_every_n_steps, probes.at_steps or probes.log_spaced"
            )

    @staticmethod
    def _multiple(step: int, every: int | None) -> bool:
        return every is not None and step % every == 0

    def is_expensive_step(self, step: int) -> bool:
        """Expensive probes (and the cheap ones) are due at ``step``."""
        return (
            self._multiple(step, self.expensive_every_n_steps)
            or step in self.at_steps
            or step in self.log_steps
        )

    def is_probe_step(self, step: int) -> bool:
        """At least the cheap probes are due at ``step``."""
        return self._multiple(step, self.every_n_steps) or self.is_expensive_step(step)

    def is_final_step(self, step: int) -> bool:
        return step == self.total_steps

    def probe_steps(self, upto: int | None = None) -> list[int]:
        """All steps in ``[0, upto]`` (default ``total_steps``) with any probe due."""
        last = self.total_steps if upto is None else int(upto)
        return [t for t in range(last + 1) if self.is_probe_step(t)]

    def expensive_steps(self, upto: int | None = None) -> list[int]:
        last = self.total_steps if upto is None else int(upto)
        return [t for t in range(last + 1) if self.is_expensive_step(t)]

    def describe(self) -> str:
        parts = []
        if self.every_n_steps:
            parts.append(f"cheap every {self.every_n_steps}")
        if self.expensive_every_n_steps:
            parts.append(f"expensive every {self.expensive_every_n_steps}")
        if self.at_steps:
            parts.append(f"at {len(self.at_steps)} listed steps")
        if self.log_steps:
            parts.append(f"{len(self.log_steps)} log-spaced steps")
        return ", ".join(parts) + f" over {self.total_steps} steps"


__all__ = ["ProbeSchedule", "log_spaced_steps"]
