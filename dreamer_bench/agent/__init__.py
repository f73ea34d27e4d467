"""The DreamerV3 agent and the registry of its robustness techniques.

The configuration and the registry import without torch (the command line, the suites and the
report read them); the networks (``Agent``, ``ActSpace``) load on first use."""

from .config import PRESETS, AgentConfig, ConfigError, make_config
from .techniques import NAMES, TECHNIQUES, UnknownTechnique, variant_name

__all__ = ["ActSpace", "Agent", "AgentConfig", "ConfigError", "make_config", "PRESETS",
           "NAMES", "TECHNIQUES", "UnknownTechnique", "variant_name"]


def __getattr__(name: str):
    if name in ("Agent", "ActSpace"):
        from . import agent

        return getattr(agent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
