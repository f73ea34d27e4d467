"""The DreamerV3 agent and the registry of its robustness techniques."""

from .agent import ActSpace, Agent
from .config import PRESETS, AgentConfig, ConfigError, make_config
from .techniques import NAMES, TECHNIQUES, UnknownTechnique, variant_name

__all__ = ["ActSpace", "Agent", "AgentConfig", "ConfigError", "make_config", "PRESETS",
           "NAMES", "TECHNIQUES", "UnknownTechnique", "variant_name"]
