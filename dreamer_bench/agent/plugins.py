"""A researcher's own techniques, beside the built-in ones: plug-ins.

A plug-in is a subclass of ``Plugin`` in the user's own file or module. Named with ``--plugin``
(a file path, an importable module, or the name of an installed package's entry point in the group
``dreamer_bench.techniques``), it becomes a technique like the built-in ones: ``tricks`` lists it,
``ablate --off NAME`` switches it off, and ``agent/isolation.py`` checks it against what its
``isolation`` says. It is on in the full agent of every run it is loaded into, and its name joins
the variant's (``full@mine``, ``off-mine@mine``), so that runs with and without it never share a
folder; its name, its source's digest and its settings are part of the run's identity.

A plug-in is a ``torch.nn.Module`` (its parameters, if any, train with the agent's and are
checkpointed with it, under ``plugins.<name>.``) with four extension points, each optional:

``core(cfg, act_dim)``
    a module that replaces the RSSM's recurrent core: ``forward(deter (N, D), stoch (N, L·C),
    action (N, A)) -> deter (N, D)``; its parameters are under ``rssm.core.``.
``transform_batch(batch, agent)``
    the replayed batch (on the device, the keys of ``agent.BATCH_KEYS`` and the observations) →
    the batch the update trains on.
``losses(agent, replayed)``
    extra loss terms, each (B, T) or a scalar, named in ``terms``; each is multiplied by the
    plug-in's ``scale`` setting (default 1) and summed into the world model's loss.
``transform_returns(returns, agent)``
    the imagined λ-returns (N, H) → those the actor and critic learn from.

Settings: ``settings = {"scale": 1.0, ...}`` on the class; ``--set NAME.KEY=VALUE`` changes one
(parsed as the default's type). The README has a worked example.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from . import techniques
from .techniques import Isolation

ENTRY_POINTS = "dreamer_bench.techniques"  # the entry-point group an installed package names its plug-ins in
NAME = re.compile(r"[a-z][a-z0-9_]*$")


class PluginError(ValueError):
    """A plug-in that cannot be loaded or used: one line saying why."""


@dataclass
class Replayed:
    """What the world model made of a replayed batch, handed to ``Plugin.losses``.

    data: the batch on the device (observations (B, T+1, ...), action, reward, is_first, ...; the
    context step first); feat (B, T, F), deter (B, T, D), stoch (B, T, L, C): the posterior
    features of the T trained steps, with gradient into the world model; post: the posterior's
    log-probabilities (B, T, L, C)."""

    data: dict[str, torch.Tensor]
    feat: torch.Tensor
    deter: torch.Tensor
    stoch: torch.Tensor
    post: torch.Tensor


class Plugin(nn.Module):
    """The base class of a user's technique (see the module's docstring)."""

    name: str = ""  # the technique's name: lowercase letters, digits, underscores
    on: str = ""  # what the agent does with it (the `tricks` table)
    off: str = "the agent without it"  # what it does without it
    isolation: Isolation = Isolation()  # what switching it off may change (agent/isolation.py)
    needs: str = ""  # an observation kind it only acts on ("vector", "image"), if any
    terms: tuple[str, ...] | None = None  # the loss terms ``losses`` returns (default: one, the name)
    settings: dict[str, Any] = {}  # its own settings and their defaults (--set NAME.KEY=VALUE)

    def __init__(self, cfg, obs_space: Mapping[str, tuple], act_space, settings: Mapping[str, Any] = ()):
        super().__init__()
        self.cfg = cfg
        self.settings = {**type(self).settings, **dict(settings)}

    @property
    def scale(self) -> float:
        """The weight of its loss terms (setting ``scale``, default 1)."""
        return float(self.settings.get("scale", 1.0))

    @classmethod
    def loss_terms(cls) -> tuple[str, ...]:
        if cls.terms is not None:
            return tuple(cls.terms)
        return (cls.name,) if cls.losses is not Plugin.losses else ()

    @classmethod
    def check(cls, settings: Mapping[str, Any]) -> None:
        """Optional: raise ``PluginError`` (one line) for settings that cannot work, such as a file
        that does not exist. ``settings``: the defaults with the run's values over them. A grid
        calls it for every run before it writes anything (runner/build.py)."""

    # ---- extension points (each optional) ----------------------------------------------------

    def core(self, cfg, act_dim: int) -> nn.Module | None:
        return None

    def transform_batch(self, batch: dict[str, torch.Tensor], agent) -> dict[str, torch.Tensor]:
        return batch

    def losses(self, agent, replayed: Replayed) -> dict[str, torch.Tensor]:
        return {}

    def transform_returns(self, returns: torch.Tensor, agent) -> torch.Tensor:
        return returns


# ------------------------------------------------------------------------------------------------
# loading

CLASSES: dict[str, type[Plugin]] = {}  # name → class, of the plug-ins this process loaded
SOURCES: dict[str, tuple[str, str]] = {}  # name → (reference it was loaded from, sha256 of its source)
_LOADED: dict[str, tuple[str, ...]] = {}  # reference → the names it defined


def _digest(path: Path | None, fallback: str) -> str:
    data = path.read_bytes() if path is not None and path.is_file() else fallback.encode()
    return hashlib.sha256(data).hexdigest()[:16]


def _import_file(path: Path):
    key = "dreamer_bench_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:10]
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[key]
        raise
    return module


def _resolve(ref: str):
    """(the module or class a reference names, the path of its source, the reference as recorded)."""
    path = Path(ref).expanduser()
    if ref.endswith(".py") or path.is_file():
        if not path.is_file():
            raise PluginError(f"plug-in file {ref} does not exist")
        path = path.resolve()
        return _import_file(path), path, str(path)
    eps = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINTS)}
    if ref in eps:
        target = eps[ref].load()
        source = inspect.getsourcefile(target)
        return target, Path(source) if source else None, ref
    try:
        module = importlib.import_module(ref)
    except ModuleNotFoundError as e:
        if e.name and ref.startswith(e.name):
            valid = ", ".join(sorted(eps)) or "none installed"
            raise PluginError(f"no plug-in {ref!r}: not a file, not an importable module, not an entry point of "
                              f"{ENTRY_POINTS} (installed: {valid})") from None
        raise
    source = inspect.getsourcefile(module)
    return module, Path(source) if source else None, ref


def _classes(target) -> list[type[Plugin]]:
    if isinstance(target, type):
        return [target] if issubclass(target, Plugin) and target is not Plugin else []
    return [c for c in vars(target).values()
            if isinstance(c, type) and issubclass(c, Plugin) and c is not Plugin and c.__module__ == target.__name__]


def _check_class(cls: type[Plugin], ref: str) -> None:
    if not isinstance(cls.name, str) or not NAME.match(cls.name):
        raise PluginError(f"plug-in {cls.__name__} of {ref}: name must be lowercase letters, digits and underscores "
                          f"starting with a letter, got {cls.name!r}")
    if not cls.on:
        raise PluginError(f"plug-in {cls.name} of {ref}: say what it does in its `on` text")
    if cls.needs not in ("", "vector", "image"):
        raise PluginError(f"plug-in {cls.name} of {ref}: needs must be one of vector, image or empty, got {cls.needs!r}")
    if not isinstance(cls.isolation, Isolation):
        raise PluginError(f"plug-in {cls.name} of {ref}: isolation must be an agent.techniques.Isolation")
    for key, value in cls.settings.items():
        if not isinstance(value, (bool, int, float, str)):
            raise PluginError(f"plug-in {cls.name} of {ref}: setting {key} must default to a bool, int, float or str")


def load(ref: str) -> tuple[str, ...]:
    """Load the plug-ins a reference names (a file, a module or an entry point), register them as
    techniques and return their names. Loading the same reference again returns the same names."""
    ref = str(ref).strip()
    if ref in _LOADED:
        return _LOADED[ref]
    try:
        target, path, recorded = _resolve(ref)
    except PluginError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's code failed to import: one line, which and why
        raise PluginError(f"plug-in {ref} failed to load: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if recorded in _LOADED:
        _LOADED[ref] = _LOADED[recorded]
        return _LOADED[ref]
    classes = _classes(target)
    if not classes:
        raise PluginError(f"{ref} defines no subclass of dreamer_bench.agent.plugins.Plugin")
    digest = _digest(path, recorded)
    for cls in classes:
        _check_class(cls, ref)
        known = SOURCES.get(cls.name)
        if known is not None and known[0] != recorded:
            raise PluginError(f"plug-in name {cls.name!r} of {recorded} is already taken by {known[0]}")
        try:
            techniques.register(techniques.Technique(cls.name, cls.on, cls.off, recorded, cls.isolation, cls.needs,
                                                     plugin=recorded))
        except techniques.UnknownTechnique as e:
            raise PluginError(str(e)) from None
        CLASSES[cls.name] = cls
        SOURCES[cls.name] = (recorded, digest)
    names = tuple(sorted(c.name for c in classes))
    _LOADED[ref] = _LOADED[recorded] = names
    return names


def load_all(refs) -> tuple[str, ...]:
    """Load several references; the names of every plug-in they define, sorted."""
    out: set[str] = set()
    for ref in refs:
        out.update(load(ref))
    return tuple(sorted(out))


def installed() -> list[str]:
    """The names of the entry points installed packages declare in ``dreamer_bench.techniques``."""
    return sorted(ep.name for ep in metadata.entry_points(group=ENTRY_POINTS))


def recorded_refs(names) -> dict[str, str]:
    """name → the reference each loaded plug-in came from (config.json keeps it, so that
    ``predict`` can load the plug-ins a run was trained with)."""
    return {n: SOURCES[n][0] for n in sorted(names)}


def digests(names) -> dict[str, str]:
    return {n: SOURCES[n][1] for n in sorted(names)}


def check_loaded(names) -> None:
    missing = [n for n in names if n not in CLASSES]
    if missing:
        raise PluginError(f"plug-in {', '.join(missing)} is not loaded: name its file or module with --plugin")


def parse_setting(key: str, text: Any) -> tuple[str, Any]:
    """``NAME.KEY`` and a value (or its text) → the pair as the config keeps it, typed as the default."""
    name, _, field = key.partition(".")
    check_loaded([name])
    defaults = CLASSES[name].settings
    if field not in defaults:
        raise PluginError(f"plug-in {name} has no setting {field!r}; valid: {', '.join(defaults) or 'none'}")
    from .config import typed_like

    default = defaults[field]
    if not isinstance(text, str):
        return key, text
    try:
        return key, typed_like(default, text)
    except ValueError:
        raise PluginError(f"cannot parse {key}={text!r} as {type(default).__name__}") from None


def _active(cfg) -> dict[str, dict[str, Any]]:
    """The active plug-ins of a configuration (loaded and not switched off): name → its own settings."""
    check_loaded(cfg.plugins)
    settings = dict(cfg.plugin_settings)
    return {name: {k.partition(".")[2]: v for k, v in settings.items() if k.partition(".")[0] == name}
            for name in cfg.plugins if name not in cfg.off}


def check_settings(cfg) -> None:
    """Each active plug-in's own check of its settings (``Plugin.check``), as a grid's does before it starts."""
    for name, own in _active(cfg).items():
        cls = CLASSES[name]
        cls.check({**cls.settings, **own})


def build(cfg, obs_space, act_space) -> dict[str, Plugin]:
    """The active plug-ins of a configuration (loaded and not switched off), built from its seed."""
    from .functional import seeded

    out = {}
    for name, own in _active(cfg).items():
        with seeded(cfg.seed, f"plugins.{name}"):
            out[name] = CLASSES[name](cfg, obs_space, act_space, own)
    return out
