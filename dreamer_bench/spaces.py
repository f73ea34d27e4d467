"""Action space shared by the environments and the agent (imports nothing of either)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActSpace:
    """Discrete: ``size`` actions, given as an index; continuous: ``size`` dimensions in [−1, 1]."""

    discrete: bool
    size: int
