"""dreamer-bench: benchmark DreamerV3 and ablate its robustness techniques."""

__version__ = "0.4.0"
