"""The DreamerV3 agent and the registry of its robustness techniques.

The configuration, the registry and the action space import without torch (the command line, the
suites and the report read them); the networks (``Agent``) load on first use."""

from typing import TYPE_CHECKING

from ..spaces import ActSpace
from .config import PRESETS, AgentConfig, ConfigError, make_config
from .techniques import NAMES, TECHNIQUES, UnknownTechnique, variant_name

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["ActSpace", "Agent", "AgentConfig", "ConfigError", "make_config", "PRESETS",
           "NAMES", "TECHNIQUES", "UnknownTechnique", "variant_name"]


def __getattr__(name: str):
    if name == "Agent":
        from .agent import Agent

        return Agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
