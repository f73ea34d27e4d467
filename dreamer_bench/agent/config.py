"""Agent configuration: one flat dataclass, official size presets, overrides by field name.

Defaults are those of the official DreamerV3 (2024) as given in ``shared/DREAMERV3.md``.
A user reaches every field from the command line with ``--set name=value``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..results import RENAMED_FIELDS
from . import techniques


ACTOR_GRADS = ("reinforce", "backprop")
# The range of every numeric field: (low, high, low included, high included); values must also be
# finite. A value outside is refused in one line naming the range.
_POS, _NONNEG, _UNIT = (1, None, True, True), (0, None, True, True), (0.0, 1.0, True, True)
RANGES: dict[str, tuple] = {
    **{k: _POS for k in ("deter", "hidden", "latents", "blocks", "depth", "units", "kernel", "batch_size",
                         "batch_length", "horizon")},
    "classes": (2, None, True, True),
    **{k: _NONNEG for k in ("enc_layers", "dec_layers", "rew_layers", "con_layers", "actor_layers",
                            "critic_layers", "prior_layers", "post_layers", "warmup", "seed")},
    "discount": (0.0, 1.0, False, True),
    "return_lambda": _UNIT, "replay_lambda": _UNIT, "slow_rate": _UNIT,
    "actor_unimix": (0.0, 1.0, True, False), "latent_unimix": (0.0, 1.0, True, False),
    "retnorm_rate": (0.0, 1.0, False, True),
    "retnorm_low": (0.0, 100.0, True, True), "retnorm_high": (0.0, 100.0, True, True),
    "beta1": (0.0, 1.0, True, False), "beta2": (0.0, 1.0, True, False),
    **{k: (0.0, None, False, True) for k in ("actor_min_std", "actor_max_std", "retnorm_limit", "lr",
                                             "laprop_eps", "adam_eps", "agc_clip")},
    **{k: (0.0, None, True, True) for k in ("actor_entropy", "free_nats", "agc_pmin", "grad_clip", "scale_rec",
                                            "scale_rew", "scale_con", "scale_dyn", "scale_rep", "scale_policy",
                                            "scale_value", "scale_repval", "scale_slowreg")},
}


def _describe(lo, hi, lo_in, hi_in) -> str:
    if hi is None:
        return f"{'≥' if lo_in else '>'} {lo:g}"
    return f"in {'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def check_range(name: str, value) -> None:
    import math

    lo, hi, lo_in, hi_in = RANGES[name]
    ok = math.isfinite(value) and (value >= lo if lo_in else value > lo)
    if hi is not None:
        ok = ok and (value <= hi if hi_in else value < hi)
    if not ok:
        raise ValueError(f"{name} must be {_describe(lo, hi, lo_in, hi_in)}, got {value!r}")


@dataclass(frozen=True)
class AgentConfig:
    # --- size (see PRESETS) ---
    deter: int = 512  # recurrent state width
    hidden: int = 64  # width of the RSSM's hidden layers (core inputs, prior, posterior)
    latents: int = 32  # number of categorical latents
    classes: int = 4  # classes per latent
    blocks: int = 8  # GRU blocks (block_gru on); the decoder's deter layer always uses 8
    depth: int = 4  # CNN channel multiplier
    units: int = 64  # width of MLP hidden layers
    enc_layers: int = 3  # hidden layers of the vector encoder MLP
    dec_layers: int = 3  # hidden layers of the vector decoder MLP
    rew_layers: int = 1  # hidden layers of the reward head
    con_layers: int = 1  # hidden layers of the continue head
    actor_layers: int = 3  # hidden layers of the actor
    critic_layers: int = 3  # hidden layers of the critic (and its slow copy)
    prior_layers: int = 2  # hidden layers of the RSSM prior (the official `imglayers`)
    post_layers: int = 1  # hidden layers of the RSSM posterior (the official `obslayers`)
    kernel: int = 5  # CNN kernel size
    bins: int = 255  # two-hot bins (odd, symmetric around 0)
    # --- replay batch ---
    batch_size: int = 16  # replayed windows per update
    batch_length: int = 64  # trained steps per window (one context step more is replayed)
    replay_prefetch: bool = False  # draw each batch one update ahead, as the official agent (runner/schedule.py)
    # --- imagination and returns ---
    horizon: int = 15  # imagined steps (horizon + 1 states with the start)
    discount: float = 1 - 1 / 333  # γ, inside the continue target
    return_lambda: float = 0.95  # λ of the imagined λ-returns
    replay_lambda: float = 0.95  # λ' of the replay critic targets
    actor_entropy: float = 3e-4  # entropy bonus of the policy loss (η)
    actor_min_std: float = 0.1  # lower bound of a continuous actor's standard deviation
    actor_max_std: float = 1.0  # upper bound of a continuous actor's standard deviation
    actor_unimix: float = 0.01  # discrete actor's uniform mix (0 reproduces the official head)
    latent_unimix: float = 0.01  # RSSM prior/posterior uniform mix (the `unimix` technique; alias `unimix`)
    free_nats: float = 1.0  # the free-bits floor of each KL term, in nats (the `free_bits` technique)
    retnorm_rate: float = 0.01  # EMA rate of the return percentiles (the `return_norm` technique)
    retnorm_low: float = 5.0  # percentile
    retnorm_high: float = 95.0  # percentile
    retnorm_limit: float = 1.0  # the return scale is max(limit, P95 − P5)
    slow_rate: float = 0.02  # θ_slow ← rate·θ + (1 − rate)·θ_slow after every update
    # Gradient of a continuous actor: reinforce (the 2024 agent, every action space) or backprop
    # through the imagined dynamics (the 2023 agent's `actor_grad_cont: backprop`, used by the
    # published DMC runs). Discrete actors always use REINFORCE. Not a technique: a protocol choice.
    actor_grad_cont: str = "reinforce"
    # --- loss scales ---
    scale_rec: float = 1.0  # weight of the reconstruction loss
    scale_rew: float = 1.0  # weight of the reward loss
    scale_con: float = 1.0  # weight of the continue loss
    scale_dyn: float = 1.0  # weight of the dynamics KL (0.55 with kl_balance off)
    scale_rep: float = 0.1  # weight of the representation KL (0.55 with kl_balance off)
    scale_policy: float = 1.0  # weight of the policy loss
    scale_value: float = 1.0  # weight of the imagined critic loss
    scale_repval: float = 0.3  # weight of the replay critic loss (the `repval` technique)
    scale_slowreg: float = 1.0  # weight of the pull towards the slow critic (the `slow_critic` technique)
    # --- optimiser ---
    lr: float = 4e-5  # learning rate of every module after the warm-up
    laprop_eps: float = 1e-20  # ε of LaProp's normalisation (the `laprop` technique)
    adam_eps: float = 1e-8  # used when laprop is off
    beta1: float = 0.9  # momentum decay
    beta2: float = 0.999  # second-moment decay
    warmup: int = 1000  # updates of linear lr warm-up from 0
    agc_clip: float = 0.3  # the `agc` technique's clip ratio ‖g‖ ≤ agc_clip·max(agc_pmin, ‖θ‖) (alias `agc`)
    agc_pmin: float = 1e-3  # floor of the parameter norm in the AGC bound
    grad_clip: float = 0.0  # optional global-norm clipping (0: none); not a technique
    # --- machinery ---
    device: str = "cpu"  # cpu, cuda or cuda:N (not part of a run's identity)
    precision: str = "fp32"  # fp32 | bf16 (autocast for matmuls and convolutions)
    compile: bool = False  # torch.compile the training step's pure functions
    seed: int = 0  # seeds the networks' initialisation and the training and acting generators
    # --- techniques switched off (names from techniques.names(), sorted) ---
    off: tuple[str, ...] = field(default_factory=tuple)  # switched off with --off only
    # --- users' techniques (agent/plugins.py): the names of the loaded plug-ins (on unless in
    # `off`) and their settings as sorted ("name.key", value) pairs; set with --plugin and --set ---
    plugins: tuple[str, ...] = field(default_factory=tuple)
    plugin_settings: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "off", techniques.validate(self.off))
        object.__setattr__(self, "plugins", tuple(sorted(set(self.plugins))))
        settings = dict(self.plugin_settings.items() if isinstance(self.plugin_settings, Mapping)
                        else (tuple(kv) for kv in self.plugin_settings))
        if self.plugins or settings:
            from .plugins import check_loaded, parse_setting

            check_loaded(self.plugins)
            for key in settings:
                if key.partition(".")[0] not in self.plugins:
                    raise ValueError(f"setting {key} is for plug-in {key.partition('.')[0]}, which this "
                                     f"configuration does not load")
            settings = dict(parse_setting(k, v) for k, v in settings.items())
        object.__setattr__(self, "plugin_settings", tuple(sorted(settings.items())))
        stray = [n for n in self.off if techniques.BY_NAME[n].plugin and n not in self.plugins]
        if stray:
            raise techniques.UnknownTechnique(f"technique {', '.join(stray)} is a plug-in this configuration does not "
                                              f"load; valid: {', '.join(techniques.NAMES + self.plugins)}")
        for name in RANGES:
            check_range(name, getattr(self, name))
        if self.actor_max_std < self.actor_min_std:
            raise ValueError(f"actor_max_std ({self.actor_max_std}) must be ≥ actor_min_std ({self.actor_min_std})")
        if self.retnorm_high <= self.retnorm_low:
            raise ValueError(f"retnorm_high ({self.retnorm_high}) must be > retnorm_low ({self.retnorm_low})")
        if not (self.device in ("cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ValueError(f"device must be one of cpu, cuda, cuda:N; got {self.device!r}")
        if self.bins % 2 != 1 or self.bins < 3:
            raise ValueError(f"bins must be odd and >= 3, got {self.bins}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be one of fp32, bf16; got {self.precision!r}")
        if self.actor_grad_cont not in ACTOR_GRADS:
            raise ValueError(f"actor_grad_cont must be one of {', '.join(ACTOR_GRADS)}; got {self.actor_grad_cont!r}")
        if self.deter % self.blocks:
            raise ValueError(f"deter ({self.deter}) must be divisible by blocks ({self.blocks})")

    def on(self, technique: str) -> bool:
        """Whether a robustness technique is switched on."""
        if technique not in techniques.BY_NAME:
            raise KeyError(technique)
        if techniques.BY_NAME[technique].plugin and technique not in self.plugins:
            return False
        return technique not in self.off

    @property
    def stoch(self) -> int:
        return self.latents * self.classes

    @property
    def feat(self) -> int:
        return self.deter + self.stoch

    @property
    def variant(self) -> str:
        return techniques.variant_name(self.off, self.plugins)

    def replace(self, **changes: Any) -> "AgentConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["off"] = list(self.off)
        d["plugins"] = list(self.plugins)
        d["plugin_settings"] = dict(self.plugin_settings)
        if self.plugins:  # what each plug-in's source was: a changed file is another agent
            from .plugins import digests

            d["plugin_sources"] = digests(self.plugins)
        return d


_SIZES = {  # preset: (deter, hidden, classes, depth, units)
    "size1m": (512, 64, 4, 4, 64),
    "size12m": (2048, 256, 16, 16, 256),
    "size25m": (3072, 384, 24, 24, 384),
    "size50m": (4096, 512, 32, 32, 512),
    "size100m": (6144, 768, 48, 48, 768),
    "size200m": (8192, 1024, 64, 64, 1024),
    "size400m": (12288, 1536, 96, 96, 1536),
}

PRESETS: dict[str, dict[str, Any]] = {
    name: dict(deter=d, hidden=h, classes=c, depth=k, units=u)
    for name, (d, h, c, k, u) in _SIZES.items()
}
# The official debug preset shrinks everything for tests. Its `.*\.layers: 1` sets every MLP's
# layers to 1 but not the RSSM's `imglayers` (the prior keeps 2 hidden layers) or `obslayers` (1).
PRESETS["debug"] = dict(
    units=8, deter=8, hidden=3, blocks=4, latents=2, classes=4, depth=2,
    enc_layers=1, dec_layers=1, actor_layers=1, critic_layers=1,
    bins=5, batch_size=8, batch_length=10,
)

FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in fields(AgentConfig)}
# a field's former name (it was its technique's name too) → its name: accepted in --set, suite
# files, config.json and checkpoints, so existing runs and commands keep working
ALIASES: dict[str, str] = {old: new for new, old in RENAMED_FIELDS.items()}


def canonical(fields_: Mapping[str, Any]) -> dict[str, Any]:
    """Field values with former names replaced by the current ones."""
    return {ALIASES.get(k, k): v for k, v in fields_.items()}


class ConfigError(ValueError):
    """A bad preset, field name or value."""


def typed_like(default: Any, text: str) -> Any:
    """``text`` as a value of ``default``'s type (bool: true/false, 1/0, yes/no, on/off; tuple:
    comma- or plus-separated); ValueError when it is not one."""
    if isinstance(default, bool):
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(text)
        return low in ("true", "1", "yes", "on")
    if isinstance(default, (int, float)):
        return type(default)(text)
    if isinstance(default, tuple):
        return tuple(x for x in text.replace("+", ",").split(",") if x.strip())
    return str(text)


def parse_value(name: str, text: str) -> Any:
    """Parse ``text`` into the type of the config field ``name`` (or its former name)."""
    name = ALIASES.get(name, name)
    if name not in FIELDS:
        raise ConfigError(f"unknown config field {name!r}; valid: {', '.join(FIELDS)}")
    default = getattr(AgentConfig(), name)
    try:
        return typed_like(default, text)
    except ValueError:
        raise ConfigError(
            f"cannot parse {name}={text!r} as {type(default).__name__}"
        ) from None


def make_config(
    preset: str = "size1m",
    overrides: Mapping[str, Any] | None = None,
    off: tuple[str, ...] | list[str] = (),
) -> AgentConfig:
    """Build a configuration from a preset, field overrides (values or strings) and techniques off."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown size {preset!r}; valid: {', '.join(PRESETS)}")
    values: dict[str, Any] = dict(PRESETS[preset])
    plugin_settings: dict[str, Any] = {}
    for name, value in canonical(overrides or {}).items():
        if "." in name:  # a plug-in's own setting, NAME.KEY
            plugin_settings[name] = value
            continue
        if name not in FIELDS:
            raise ConfigError(f"unknown config field {name!r}; valid: {', '.join(FIELDS)}")
        values[name] = parse_value(name, value) if isinstance(value, str) else value
    values["off"] = tuple(values.get("off", ())) + tuple(off)
    given = values.get("plugin_settings", ())
    values["plugin_settings"] = tuple({**dict(given.items() if isinstance(given, Mapping) else given),
                                       **plugin_settings}.items())
    try:
        return AgentConfig(**values)
    except techniques.UnknownTechnique:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None
