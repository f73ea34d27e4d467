"""The registry of DreamerV3's robustness techniques: the single source for the CLI, docs and tests.

Every technique is on by default and can be switched off on its own (``--off NAME``). The code of
each technique and of its "off" branch live together in the module named by ``where``; the agent
asks ``config.on(name)`` at that one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..results import PLUGIN_MARK, baseline_variant  # noqa: F401 (the variant names' grammar lives with the results)


@dataclass(frozen=True)
class Isolation:
    """What switching a technique off may change, and nothing else (checked by agent/isolation.py
    on two agents built from the same seed, one full and one with the technique off)."""

    # state-dict keys whose initial value or shape differs; a string: the prefix of keys that go away
    params: frozenset[str] | str = frozenset()
    # loss terms whose value differs on the same batch and random streams; None: not comparable
    # there (the off branch changes the latent samples: its pieces have their own tests)
    losses: frozenset[str] | None = frozenset()
    # it acts in the optimiser alone: the forward pass is the same, one update from the same state is not
    update: bool = False


@dataclass(frozen=True)
class Technique:
    name: str
    on: str  # what the full agent does
    off: str  # the baseline that replaces it
    where: str  # module that implements both branches
    isolation: Isolation = Isolation()  # what its "off" changes (and so what it must leave alone)
    needs: str = ""  # an observation kind the technique only acts on ("vector"), if any
    plugin: str = ""  # a user's technique: where it was loaded from (agent/plugins.py); "" for built-ins

    @property
    def code(self) -> str:
        """Where its code is, as the tables show it."""
        return self.plugin or f"dreamer_bench/{self.where}"

    def to_dict(self) -> dict:
        iso = self.isolation
        plain = lambda x: x if x is None or isinstance(x, str) else sorted(x)  # noqa: E731
        return {"name": self.name, "on": self.on, "off": self.off, "where": self.where, "needs": self.needs,
                "plugin": self.plugin,
                "isolation": {"params": plain(iso.params), "losses": plain(iso.losses), "update": iso.update}}


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


_HEADS_OUT = _keys(*(f"{m}.out.{p}" for m in ("reward", "critic", "slow_critic") for p in ("weight", "bias")))


TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        "symlog",
        "vector inputs enter as symlog(x); the vector decoder regresses symlog(x)",
        "raw vector inputs; the vector decoder regresses raw x",
        "agent/nets.py",
        Isolation(),  # compared on image observations, where it must change nothing
        needs="vector",
    ),
    Technique(
        "twohot",
        "reward and critic: 255-bin symexp two-hot cross-entropy heads",
        "one scalar output per head trained with MSE on raw targets (raw-scale repval gradients reach the world model)",
        "agent/heads.py",
        Isolation(params=_HEADS_OUT, losses=_keys("rew", "value", "repval", "policy")),
    ),
    Technique(
        "kl_balance",
        "dynamics KL weight 1.0, representation KL weight 0.1",
        "both KL weights 0.55 (same total, no balance)",
        "agent/losses.py",
        Isolation(),  # only the two KL scales change (tests/test_isolation.py)
    ),
    Technique(
        "free_bits",
        "each KL term is clipped below at 1 nat per (b, t)",
        "no clipping of the KL terms",
        "agent/losses.py",
        Isolation(losses=_keys("dyn", "rep")),
    ),
    Technique(
        "unimix",
        "RSSM prior/posterior and discrete actor mix 1% uniform into their probabilities",
        "plain softmax everywhere",
        "agent/heads.py",
        Isolation(losses=None),
    ),
    Technique(
        "return_norm",
        "advantages divided by max(1, EMA of P95 - P5 of imagined returns)",
        "advantages not scaled (S = 1)",
        "agent/losses.py",
        Isolation(losses=_keys("policy")),
    ),
    Technique(
        "repval",
        "critic also trained on replayed states with λ-returns of real rewards (scale 0.3)",
        "no replay critic loss",
        "agent/agent.py",
        Isolation(losses=_keys("repval")),  # absent when off
    ),
    Technique(
        "slow_critic",
        "critic regularised towards a slow EMA copy (rate 0.02) of itself",
        "no slow-critic regulariser (no slow copy kept)",
        "agent/agent.py",
        Isolation(params="slow_critic.", losses=_keys("value", "repval")),
    ),
    Technique(
        "block_gru",
        "recurrent core split into 8 blocks with block-diagonal weights",
        "one dense block of the same deter size (the core's parameters grow several-fold)",
        "agent/rssm.py",
        Isolation(params=_keys("rssm.core.hidden.weight", "rssm.core.gates.weight"), losses=None),
    ),
    Technique(
        "agc",
        "adaptive gradient clipping per tensor: ‖g‖ ≤ 0.3·max(1e-3, ‖θ‖)",
        "no gradient clipping",
        "agent/optim.py",
        Isolation(update=True),
    ),
    Technique(
        "laprop",
        "LaProp optimiser (normalise, then momentum), ε 1e-20",
        "Adam with the same lr, betas and warm-up, ε 1e-8",
        "agent/optim.py",
        Isolation(update=True),
    ),
    Technique(
        "zero_init",
        "reward and critic output weights start at 0; actor output weights × 0.01",
        "normal initialisation for every output layer",
        "agent/heads.py",
        Isolation(params=_keys("reward.out.weight", "critic.out.weight", "slow_critic.out.weight", "actor.out.weight"),
                  losses=_keys("rew", "value", "repval", "policy")),
    ),
    Technique(
        "recon_grad",
        "reconstruction gradients reach the representation",
        "the decoder reads stop-gradient features (decoder still trains)",
        "agent/agent.py",
        Isolation(update=True),  # the forward pass is the same; the gradients are not
    ),
    Technique(
        "reward_grad",
        "reward and replay-value gradients reach the representation",
        "reward head and replay critic read stop-gradient features",
        "agent/agent.py",
        Isolation(update=True),  # the forward pass is the same; the gradients are not
    ),
)

NAMES: tuple[str, ...] = tuple(t.name for t in TECHNIQUES)  # the built-in techniques
# every technique this process knows: the built-ins and the users' plug-ins loaded so far
BY_NAME: dict[str, Technique] = {t.name: t for t in TECHNIQUES}


def names() -> tuple[str, ...]:
    """Every technique this process knows: the built-ins, then the loaded plug-ins by name."""
    return NAMES + tuple(sorted(n for n in BY_NAME if n not in NAMES))


def register(technique: Technique) -> None:
    """Add a user's technique (agent/plugins.py loads them); a name is registered once."""
    known = BY_NAME.get(technique.name)
    if known is not None and known != technique:
        where = "a built-in technique" if not known.plugin else f"the plug-in of {known.plugin}"
        raise UnknownTechnique(f"technique name {technique.name!r} of {technique.plugin} is taken by {where}")
    BY_NAME[technique.name] = technique


class UnknownTechnique(ValueError):
    """A technique name that is not in the registry."""


def validate(names_: Iterable[str]) -> tuple[str, ...]:
    """Return the names sorted and de-duplicated, or raise with the valid choices."""
    names_ = [n.strip() for n in names_ if n and n.strip()]
    unknown = [n for n in names_ if n not in BY_NAME]
    if unknown:
        raise UnknownTechnique(
            f"unknown technique {', '.join(repr(n) for n in unknown)}; valid: {', '.join(names())} "
            f"(a plug-in of yours? name its file or module with --plugin)"
        )
    return tuple(sorted(set(names_)))


def variant_name(off: Iterable[str], plugins: Iterable[str] = ()) -> str:
    """Deterministic variant name: ``full`` or ``off-a+b`` with the names sorted; with plug-ins
    loaded, their names follow: ``full@mine``, ``off-mine@mine`` (so a run with a plug-in never
    shares a folder with one without it)."""
    off = validate(off)
    base = "full" if not off else "off-" + "+".join(off)
    plugins = sorted(set(plugins))
    return base + (PLUGIN_MARK + "+".join(plugins) if plugins else "")




def inert(names: Iterable[str], kinds: Iterable[str]) -> tuple[str, ...]:
    """The techniques among ``names`` that cannot act on a task whose observations are of
    ``kinds`` ("vector", "image"): switching them off would train exactly the full agent."""
    kinds = set(kinds)
    return tuple(n for n in validate(names) if BY_NAME[n].needs and BY_NAME[n].needs not in kinds)


def markdown_table(rows: Iterable[Technique] = TECHNIQUES) -> str:
    """The registry as the Markdown table the README shows (a test keeps the two in sync)."""
    lines = ["| name | on (full agent) | off (`--off NAME`) | code |", "|---|---|---|---|"]
    for t in rows:
        lines.append(f"| `{t.name}` | {t.on} | {t.off} | `{t.code}` |")
    return "\n".join(lines)
