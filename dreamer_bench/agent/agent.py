"""The DreamerV3 agent: networks, one training update, acting, checkpoints.

Techniques decided here: ``slow_critic`` (whether a slow copy exists and regularises the critic),
``recon_grad`` and ``reward_grad`` (which heads read stop-gradient features). The others are
switched inside the module named by the registry.

Batch layout for ``train`` (B sequences, T = batch_length trained steps, one context step first):
    obs keys    (B, T+1, ...)  images uint8 (64, 64, C), vectors float (D,)
    action      (B, T+1, A)    action taken at each step (one-hot for discrete actions)
    reward      (B, T+1)       reward that arrived with each step
    is_first, is_last, is_terminal (B, T+1)
    deter       (B, T+1, D)    stored posterior of each step (the replay context)
    stoch       (B, T+1, L, C)
``train`` replaces ``deter``/``stoch`` in the batch dict with this update's posteriors for the
T trained steps (the context step's entry is kept), for the replay to write back.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from . import losses as L
from . import plugins as P
from ..spaces import ActSpace
from ..results import IDENTITY_EXCLUDED, PLUGIN_FIELDS
from .config import AgentConfig, canonical
from .functional import seeded
from .heads import Actor, ContinueHead, ValueHead
from .nets import Decoder, Encoder
from .optim import Optimizer
from .runtime import native_bf16
from .rssm import RSSM

BATCH_KEYS = ("action", "reward", "is_first", "is_last", "is_terminal", "deter", "stoch")


def imagination_metrics(returns, scale, low, entropy, weight, value, advantage) -> dict[str, torch.Tensor]:
    """The imagination metrics both actor gradients log, under the same names. The advantage's
    mean, standard deviation and mean magnitude over the (N, H) imagined steps, and the mean of the
    returns normalised as (R − P5)/S with the share of them at |·| ≥ 1, are defined as the official
    agent logs them (``adv``, ``adv_std``, ``adv_mag``, ``ret``, ``ret_rate``):
    tests/test_official_equivalence.py checks them for one update. ``imag/weight`` is the mean of
    the H weights the losses use (the official ``weight`` averages H + 1)."""
    returns, advantage = returns.detach(), advantage.detach()
    normed = (returns - low) / scale
    return {
        "imag/return": returns.mean(),
        "imag/return_scale": scale,
        "imag/return_normed": normed.mean(),
        "imag/return_rate": (normed.abs() >= 1.0).float().mean(),
        "imag/advantage": advantage.mean(),
        "imag/advantage_std": advantage.std(unbiased=False),
        "imag/advantage_mag": advantage.abs().mean(),
        "imag/entropy": entropy.detach().mean(),
        "imag/weight": weight.detach().mean(),
        "imag/value": value.detach().mean(),
    }


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Within the block, the modules' parameters record no gradient (their inputs still do)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Agent(nn.Module):
    def __init__(self, obs_space: Mapping[str, tuple], act_space: ActSpace, cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.precision == "bf16" and not native_bf16(cfg.device):
            warnings.warn(f"precision=bf16 on {cfg.device}, which has no native bf16 matrix products: "
                          "expect it to be several times slower than fp32", RuntimeWarning, stacklevel=2)
        self.obs_space = {k: tuple(v) for k, v in obs_space.items()}
        self.act_space = act_space
        self.device = torch.device(cfg.device)
        # Each module is initialised from its own seed (see functional.seeded).
        with seeded(cfg.seed, "encoder"):
            self.encoder = Encoder(obs_space, cfg)
        # the users' techniques that are on (agent/plugins.py), each built from its own seed
        self.plugins = nn.ModuleDict(P.build(cfg, self.obs_space, act_space) if cfg.plugins else {})
        self.rssm = RSSM(self.encoder.out_width, act_space.size, cfg, core=self._plugin_core(act_space.size))
        with seeded(cfg.seed, "decoder"):
            self.decoder = Decoder(obs_space, cfg)
        with seeded(cfg.seed, "reward"):
            self.reward = ValueHead(cfg.feat, cfg.rew_layers, cfg)
        with seeded(cfg.seed, "cont"):
            self.cont = ContinueHead(cfg.feat, cfg)
        with seeded(cfg.seed, "actor"):
            self.actor = Actor(cfg.feat, act_space.size, act_space.discrete, cfg)
        with seeded(cfg.seed, "critic"):
            self.critic = ValueHead(cfg.feat, cfg.critic_layers, cfg)
        # slow_critic technique: off keeps no slow copy and no regulariser.
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False) if cfg.on("slow_critic") else None
        self.retnorm = L.ReturnNorm(cfg)
        self.to(self.device)
        self.optimizer = Optimizer(self.trained_parameters(), cfg)
        self.train_generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.act_generator = torch.Generator(self.device).manual_seed(cfg.seed + 1_000_003)
        self.updates = 0
        self._injected: list[dict[str, Any]] = []  # draws given for the next updates (inject_draws)
        self._draws: dict[str, Any] | None = None  # those of the update in progress
        self.last_losses: dict[str, torch.Tensor] = {}  # every loss term of the last update, per step
        # Pure pieces of the training step; with ``compile`` each is compiled by torch.compile.
        self._train_step = self._train_step_eager
        self._imagine_step = self._maybe_compile(self._imagine_step_eager)
        self._imagination_targets = self._maybe_compile(self._imagination_targets_eager)
        self._actor_critic_losses = self._maybe_compile(self._actor_critic_losses_eager)
        # actor_grad_cont=backprop (continuous actions only): the actor learns by differentiating
        # the imagined returns through the dynamics and the heads, whose parameters stay frozen.
        self.backprop_actor = not act_space.discrete and cfg.actor_grad_cont == "backprop"
        if self.backprop_actor:
            self._imagine_step_bp = self._maybe_compile(self._imagine_step_backprop_eager)
            self._return_heads_bp = self._maybe_compile(self._return_heads_backprop_eager)
        self._obs_step = self._maybe_compile(self.rssm.obs_step)
        self._wm_heads = self._maybe_compile(self._wm_heads_eager)

    def _plugin_core(self, act_dim: int):
        """The builder of a plug-in's recurrent core, if one replaces it."""
        owners = [p for p in self.plugins.values() if type(p).core is not P.Plugin.core]
        if len(owners) > 1:
            raise P.PluginError(f"plug-ins {', '.join(p.name for p in owners)} each replace the recurrent core: "
                                f"switch all but one off")
        if not owners:
            return None

        def build():
            core = owners[0].core(self.cfg, act_dim)
            if not isinstance(core, nn.Module):
                raise P.PluginError(f"plug-in {owners[0].name}: core() must return a torch.nn.Module, "
                                    f"got {type(core).__name__}")
            return core

        return build

    def _maybe_compile(self, fn):
        """``fn`` compiled with torch.compile when ``compile`` is set. If compiling fails on the first
        call (no C++ compiler, an unsupported platform), warn once and keep the eager function."""
        if not self.cfg.compile:
            return fn
        compiled = torch.compile(fn, dynamic=False)
        state = {"fn": compiled, "first": True}

        def call(*args, **kwargs):
            if not state["first"]:
                return state["fn"](*args, **kwargs)
            try:
                out = state["fn"](*args, **kwargs)
            except Exception as e:  # the pieces are pure: rerunning them eagerly is safe
                warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                              f"running {fn.__name__} eagerly", RuntimeWarning, stacklevel=2)
                state["fn"] = fn
                out = fn(*args, **kwargs)
            state["first"] = False
            return out

        return call

    # ---- parameters -------------------------------------------------------------------------

    def trained_parameters(self) -> list[nn.Parameter]:
        mods = (self.encoder, self.rssm, self.decoder, self.reward, self.cont, self.actor, self.critic, self.plugins)
        return [p for m in mods for p in m.parameters()]

    def autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- acting -----------------------------------------------------------------------------

    def initial_state(self, n: int) -> dict[str, torch.Tensor]:
        deter, stoch = self.rssm.initial(n, self.device)
        return {"deter": deter, "stoch": stoch, "action": torch.zeros(n, self.act_space.size, device=self.device)}

    @torch.no_grad()
    def policy(self, state: dict | None, obs: Mapping[str, Any], generator: torch.Generator | None = None,
               mode: bool = False, draws: Mapping[str, Any] | None = None) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """Act in a batch of N environments.

        obs: {key: (N, ...)} plus ``is_first`` (N,). state: from the previous call (or None).
        Returns the new state — posterior ``deter``, ``stoch`` (for the replay context) and the
        world-model ``action`` (one-hot, or unclipped) — and the environment action (N,) indices
        or (N, A) clipped to [−1, 1]. The draws come from ``generator`` (default: the acting
        generator of training), so that evaluation leaves training's draws as they were;
        ``mode``: the actor's most likely action (its mean, for continuous actions) instead of a
        sample, the latent still sampled (the official policy always samples). ``draws``: the
        samples themselves instead of drawing them (another implementation's, as ``inject_draws``
        gives them to ``train``): ``post`` (N, L) posterior indices and ``action`` (N,) action
        indices or (N, A) standard normal noise.
        """
        generator = generator or self.act_generator
        obs = self._to_device(obs)
        n = obs["is_first"].shape[0]
        if state is None:
            state = self.initial_state(n)
        with self.autocast():
            embed = self.encoder({k: obs[k] for k in self.obs_space})
            if draws is None:
                uniform = self._uniform(self.rssm.latent_noise_shape(n), generator)
            else:  # integer indices: sample_index returns them as they are
                uniform = torch.as_tensor(np.asarray(draws["post"]), device=self.device).long().reshape(
                    self.rssm.latent_noise_shape(n))
            deter, stoch, _ = self.rssm.obs_step(
                state["deter"], state["stoch"], state["action"], embed, obs["is_first"], uniform)
            params = self.actor(self.rssm.features(deter, stoch))
            if mode:
                action = self.actor.mode(params)
            elif draws is None:
                action = self.actor.sample(params, self._action_noise(n, generator))
            else:
                noise = torch.as_tensor(np.asarray(draws["action"]), device=self.device)
                noise = noise.long() if self.act_space.discrete else noise.float()
                action = self.actor.sample(params, noise.reshape(self.actor.noise_shape(n)))
        new_state = {"deter": deter.float(), "stoch": stoch.float(), "action": action.float()}
        if self.act_space.discrete:
            env_action = action.argmax(-1).cpu().numpy()
        else:
            env_action = action.clamp(-1.0, 1.0).cpu().numpy()
        return new_state, env_action

    # ---- training ---------------------------------------------------------------------------

    def _uniform(self, shape, generator) -> torch.Tensor:
        return torch.rand(shape, device=self.device, generator=generator)

    def inject_draws(self, draws: list[Mapping[str, Any]]) -> None:
        """Give the random draws of the next ``len(draws)`` updates instead of drawing them (to
        replay another implementation's samples: tests/test_official_equivalence.py). Each item
        holds the samples themselves, so that no rounding can move one:
        ``post`` (T, B, L) and ``prior`` (H, N, L) one-hot indices of the posterior and the
        imagined prior, ``action`` (H, N) action indices or (H, N, A) the standard normal noise
        of continuous actions (N = B·T imagination starts, in (b, t) order)."""
        self._injected = [dict(d) for d in draws]

    def _draw(self, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
        """The noise of one kind for this update: injected, or drawn from the train generator
        (in the order post, prior, action, as before draws could be injected)."""
        if self._draws is not None:
            value = self._draws[kind]
            if not isinstance(value, torch.Tensor):  # another implementation's indices (arrays, lists)
                value = torch.as_tensor(np.asarray(value), device=self.device)
            return (value.float() if value.is_floating_point() else value.long()).reshape(shape)
        if kind == "action":
            return torch.stack([self._action_noise(shape[1], self.train_generator) for _ in range(shape[0])])
        return self._uniform(shape, self.train_generator)

    def _action_noise(self, n: int, generator) -> torch.Tensor:
        shape = self.actor.noise_shape(n)
        if self.act_space.discrete:
            return torch.rand(shape, device=self.device, generator=generator)
        return torch.randn(shape, device=self.device, generator=generator)

    def _to_device(self, data: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in data.items():
            v = torch.as_tensor(v)
            out[k] = v.to(self.device, non_blocking=True)
        return out

    def train(self, batch: dict[str, Any]) -> dict[str, float]:  # noqa: A003 (nn.Module.train shadowed on purpose)
        """One gradient update on a batch of replayed sequences; returns metrics.

        Writes this update's posteriors of the trained steps back into ``batch['deter']`` and
        ``batch['stoch']`` (the replay context)."""
        if isinstance(batch, bool):  # nn.Module.train(mode) keeps working
            return super().train(batch)
        data = self._prepare(batch)
        for p in self.trained_parameters():
            p.grad = None
        self._draws = self._injected.pop(0) if self._injected else None
        try:
            metrics, deters, stochs = self._train_step(data)
        finally:
            self._draws = None
        return self._finish_update(batch, data, metrics, deters, stochs)

    def draws(self, b: int, t: int) -> dict[str, torch.Tensor]:
        """The random draws one update on a (B = b, T = t) batch makes, drawn now from the train
        generator in the order the update would draw them (posterior, prior, action), so that an
        update given them (``forward``) is the update ``train`` would have made."""
        cfg = self.cfg
        n = b * t
        return {"post": self._draw("post", (t, *self.rssm.latent_noise_shape(b))),
                "prior": self._draw("prior", (cfg.horizon, *self.rssm.latent_noise_shape(n))),
                "action": self._draw("action", (cfg.horizon, *self.actor.noise_shape(n)))}

    def forward(self, data: dict[str, torch.Tensor], draws: Mapping[str, torch.Tensor]):
        """The update's forward pass as a function of the parameters, the prepared batch and the
        draws alone (what a packed update maps over the seeds of a group, agent/packed.py):
        (weighted total loss, each loss term's mean, metrics, posterior deters, stochs). It moves
        the return statistics, as the update does."""
        self._draws = dict(draws)
        try:
            losses, metrics, (deters, stochs) = self._forward_losses(data)
        finally:
            self._draws = None
        scales = self.loss_scales()
        total = sum(scales[k] * losses[k].mean() for k in losses)
        return total, {k: v.mean() for k, v in losses.items()}, metrics, deters, stochs

    def _finish_update(self, batch, data, metrics, deters, stochs) -> dict[str, float]:
        """After the gradients: the optimiser step, the slow critic, the counter, the posteriors
        written back into the batch; the metrics as numbers."""
        opt_metrics = self.optimizer.step()
        self._update_slow_critic()
        self.updates += 1
        batch["deter"] = torch.cat([data["deter"][:, :1].float(), deters.float()], 1)
        batch["stoch"] = torch.cat([data["stoch"][:, :1].float(), stochs.float()], 1)
        metrics.update(opt_metrics)
        names = list(metrics)
        values = torch.stack([metrics[k].detach().float() for k in names]).cpu().tolist()
        out = dict(zip(names, values))
        out["lr"] = self.optimizer.learning_rate()
        out["updates"] = self.updates
        return out

    def _prepare(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The batch on the device, checked, then transformed by the plug-ins that transform batches."""
        data = self._to_device(batch)
        self._check_batch(data)
        for plugin in self.plugins.values():
            data = plugin.transform_batch(data, self)
            if not isinstance(data, dict):
                raise P.PluginError(f"plug-in {plugin.name}: transform_batch must return the batch dict")
            self._check_batch(data)
        return data

    def _check_batch(self, data: dict[str, torch.Tensor]) -> None:
        missing = [k for k in (*self.obs_space, *BATCH_KEYS) if k not in data]
        if missing:
            raise KeyError(f"batch lacks keys {missing}")
        b, t1 = data["reward"].shape
        if t1 < 2:
            raise ValueError(f"batch length must be ≥ 2 (a context step and a trained step), got {t1}")
        if data["action"].shape != (b, t1, self.act_space.size):
            raise ValueError(f"action must be {(b, t1, self.act_space.size)}, got {tuple(data['action'].shape)}")

    def loss_terms(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Every loss term's mean on a batch, with its graph, without updating anything but the
        generators and return statistics (for inspection and tests)."""
        data = self._prepare(batch)
        losses, _, _ = self._forward_losses(data)
        return {k: v.mean() for k, v in losses.items()}

    def _train_step_eager(self, data: dict[str, torch.Tensor]):
        """Forward the whole loss and backpropagate; returns metrics and the new posteriors."""
        losses, metrics, (deters, stochs) = self._forward_losses(data)
        scales = self.loss_scales()
        assert set(losses) == set(scales), (sorted(losses), sorted(scales))
        total = sum(scales[k] * losses[k].mean() for k in losses)
        total.backward()
        for k, v in losses.items():
            metrics[f"loss/{k}"] = v.mean()
        metrics["loss/total"] = total
        self.last_losses = {k: v.detach() for k, v in losses.items()}
        return metrics, deters.detach(), stochs.detach()

    def _forward_losses(self, data: dict[str, torch.Tensor]):
        """All loss terms, (B, T) for the world model, (N, H) for imagination, (B, T − 1) repval."""
        cfg = self.cfg
        b, t = data["reward"].shape[0], data["reward"].shape[1] - 1
        with self.autocast():
            losses, metrics, post = self._world_model_losses(data, b, t)
            feat, deters, stochs = post
            imag_losses, imag_metrics, boot = self._imagination_losses(deters, stochs)
            losses.update(imag_losses)
            metrics.update(imag_metrics)
            if cfg.on("repval"):
                losses["repval"] = self._replay_value_loss(data, feat, boot.reshape(b, t))
        return losses, metrics, (deters, stochs)

    def loss_scales(self) -> dict[str, float]:
        cfg = self.cfg
        dyn, rep = L.kl_scales(cfg)
        scales = {f"rec_{k}": cfg.scale_rec for k in self.obs_space}
        scales.update(rew=cfg.scale_rew, con=cfg.scale_con, dyn=dyn, rep=rep,
                      policy=cfg.scale_policy, value=cfg.scale_value)
        if cfg.on("repval"):
            scales["repval"] = cfg.scale_repval
        for plugin in self.plugins.values():
            scales.update({term: plugin.scale for term in plugin.loss_terms()})
        return scales

    def _world_model_losses(self, data, b, t):
        obs = {k: data[k][:, 1:] for k in self.obs_space}
        flat_obs = {k: v.reshape(b * t, *v.shape[2:]) for k, v in obs.items()}
        embed = self.encoder(flat_obs).reshape(b, t, -1)  # (B, T, E)
        # Replay context: start from the stored posterior of the context step; the first trained
        # step's previous action is the action stored at the context step.
        deter0, stoch0 = data["deter"][:, 0].float(), data["stoch"][:, 0].float()
        prev_actions = data["action"][:, :-1].float()  # (B, T, A)
        uniform = self._draw("post", (t, *self.rssm.latent_noise_shape(b)))
        deters, stochs, post = self.rssm.observe(
            deter0, stoch0, prev_actions, embed, data["is_first"][:, 1:], uniform, step=self._obs_step)
        losses, metrics = self._wm_heads(deters, stochs, post, flat_obs, data["reward"][:, 1:], data["is_terminal"][:, 1:])
        feat = self.rssm.features(deters, stochs).reshape(b * t, -1)  # (B·T, F)
        if len(self.plugins):
            losses.update(self._plugin_losses(P.Replayed(data, feat.reshape(b, t, -1), deters, stochs, post), b, t))
        return losses, metrics, (feat, deters, stochs)

    def _plugin_losses(self, replayed, b: int, t: int) -> dict[str, torch.Tensor]:
        """The plug-ins' own loss terms, each (B, T)."""
        out = {}
        for plugin in self.plugins.values():
            terms = plugin.losses(self, replayed)
            if set(terms) != set(plugin.loss_terms()):
                raise P.PluginError(f"plug-in {plugin.name}: losses() returned {sorted(terms)}, but its terms are "
                                    f"{sorted(plugin.loss_terms())}")
            for name, value in terms.items():
                if value.dim() and tuple(value.shape) != (b, t):
                    raise P.PluginError(f"plug-in {plugin.name}: loss {name} must be a scalar or (B, T) = {(b, t)}, "
                                        f"got {tuple(value.shape)}")
                out[name] = value.expand(b, t) if not value.dim() else value
        return out

    def _wm_heads_eager(self, deters, stochs, post, flat_obs, reward, is_terminal):
        """World-model losses (B, T) from the posterior rollout: reconstruction per key, reward,
        continue, and the two KL terms."""
        cfg = self.cfg
        b, t = reward.shape
        prior = self.rssm.prior_logprobs(deters)  # (B, T, L, C)
        feat = self.rssm.features(deters, stochs).reshape(b * t, -1)  # (B·T, F)
        losses = {}
        dec_feat = feat if cfg.on("recon_grad") else feat.detach()
        for k, v in self.decoder.loss(dec_feat, flat_obs).items():
            losses[f"rec_{k}"] = v.reshape(b, t)
        rew_feat = feat if cfg.on("reward_grad") else feat.detach()
        losses["rew"] = self.reward(rew_feat).loss(reward.reshape(-1)).reshape(b, t)
        con_target = L.continue_target(is_terminal, cfg)
        con = self.cont(feat)
        losses["con"] = con.loss(con_target.reshape(-1)).reshape(b, t)
        losses["dyn"], losses["rep"] = L.kl_losses(post, prior, cfg)
        with torch.no_grad():  # diagnostics: does the model still predict the episode ends it saw?
            terminal = is_terminal.reshape(-1).float()
            cont = con.pred().detach()
        metrics = {
            "wm/post_entropy": -(post.exp() * post).sum(-1).mean(),
            "wm/prior_entropy": -(prior.exp() * prior).sum(-1).mean(),
            "wm/cont_at_terminals": (cont * terminal).sum() / terminal.sum().clamp(min=1),
            "wm/terminals": terminal.sum(),
        }
        return losses, metrics

    def _imagination_losses(self, deters, stochs):
        if self.backprop_actor:
            return self._imagination_losses_backprop(deters, stochs)
        deter, stoch, latent_noise, action_noise = self._imagination_start(deters, stochs)
        feats, params, actions = [], [], []
        for t in range(self.cfg.horizon):
            feat, out, action, deter, stoch = self._imagine_step(deter, stoch, latent_noise[t], action_noise[t])
            feats.append(feat)
            params.append(out)
            actions.append(action)
        feats.append(self.rssm.features(deter, stoch))
        feats = torch.stack(feats, 1).detach()  # (N, H+1, F)
        params = torch.stack(params, 1)  # (N, H, ·)
        actions = torch.stack(actions, 1)  # (N, H, A)
        reward, cont, critic_out, value, returns, weight, slow = self._imagination_targets(feats)
        returns = self._plugin_returns(returns)
        scale = self.retnorm.update(returns)
        losses, metrics = self._actor_critic_losses(params, actions, critic_out, value, returns, weight, slow, scale)
        metrics["imag/reward"] = reward.detach().mean()  # the official ``rew``: over all H + 1 imagined states
        return losses, metrics, returns[:, 0].detach()

    def _plugin_returns(self, returns: torch.Tensor) -> torch.Tensor:
        """The imagined λ-returns (N, H) after the plug-ins that transform them."""
        for plugin in self.plugins.values():
            shape = returns.shape
            returns = plugin.transform_returns(returns, self)
            if not isinstance(returns, torch.Tensor) or returns.shape != shape:
                raise P.PluginError(f"plug-in {plugin.name}: transform_returns must return a tensor of shape {tuple(shape)}")
        return returns

    def _imagination_start(self, deters, stochs):
        """Every replayed posterior as a start state without gradient, (N, D) and (N, L, C), and
        the noise of all H imagined steps (drawn in this order by both actor gradients)."""
        cfg = self.cfg
        deter = deters.detach().reshape(-1, cfg.deter)
        stoch = stochs.detach().reshape(-1, cfg.latents, cfg.classes)
        n = deter.shape[0]
        latent_noise = self._draw("prior", (cfg.horizon, *self.rssm.latent_noise_shape(n)))
        action_noise = self._draw("action", (cfg.horizon, *self.actor.noise_shape(n)))
        return deter, stoch, latent_noise, action_noise

    def _imagine_step_eager(self, deter, stoch, latent_noise, action_noise):
        """One imagined step from (deter, stoch): the actor's output (with gradient into the actor
        only), its sampled action, and the next state from the prior (no gradient)."""
        feat = self.rssm.features(deter, stoch)
        out = self.actor(feat)
        action = self.actor.sample(out.detach(), action_noise)
        with torch.no_grad():
            deter, stoch = self.rssm.img_step(deter, stoch, action, latent_noise)
        return feat, out, action, deter, stoch

    def _imagination_losses_backprop(self, deters, stochs):
        """Imagination with the 2023 continuous actor: reparameterised actions drive the dynamics
        with gradient, and the policy loss is −sg(w)·((R − v)/S + η·H) with R and v differentiated
        through the frozen RSSM, reward, continue and critic heads into the actor alone. The
        critic learns exactly as with REINFORCE, on features without gradient."""
        cfg = self.cfg
        deter, stoch, latent_noise, action_noise = self._imagination_start(deters, stochs)
        feats, params = [], []
        with frozen(self.rssm):
            for t in range(cfg.horizon):
                feat, out, deter, stoch = self._imagine_step_bp(deter, stoch, latent_noise[t], action_noise[t])
                feats.append(feat)
                params.append(out)
            feats.append(self.rssm.features(deter, stoch))
        feats = torch.stack(feats, 1)  # (N, H+1, F), with gradient into the actions
        params = torch.stack(params, 1)
        with frozen(self.reward, self.cont, self.critic):
            reward, cont, value = self._return_heads_bp(feats)
        returns = self._plugin_returns(L.lambda_return(reward, cont, value, cfg.return_lambda))  # (N, H), differentiable
        weight = L.trajectory_weights(cont).detach()
        scale = self.retnorm.update(returns)
        entropy = self.actor.entropy(params)
        advantage = L.advantage(returns, value, scale)
        losses = {"policy": L.policy_loss_backprop(entropy, advantage, weight, cfg)}
        critic_feats = feats.detach()
        critic_out = self.critic(critic_feats)
        slow = self._slow_value(critic_feats[:, :-1])
        losses["value"] = weight * L.value_loss(critic_out[:, :-1], returns.detach(), slow, cfg)
        metrics = imagination_metrics(returns, scale, self.retnorm.offset(), entropy, weight, value, advantage)
        metrics["imag/reward"] = reward.detach().mean()
        return losses, metrics, returns[:, 0].detach()

    def _imagine_step_backprop_eager(self, deter, stoch, latent_noise, action_noise):
        """One imagined step whose reparameterised action carries gradient into the next state
        (the actor sees its input without gradient, as in the 2023 agent)."""
        feat = self.rssm.features(deter, stoch)
        out = self.actor(feat.detach())
        action = self.actor.sample(out, action_noise)
        deter, stoch = self.rssm.img_step(deter, stoch, action, latent_noise)
        return feat, out, deter, stoch

    def _return_heads_backprop_eager(self, feats):
        """Reward, continue and value (N, H+1) of imagined features, differentiable in them."""
        return self.reward(feats).pred(), self.cont(feats).pred(), self.critic(feats).pred()

    def _imagination_targets_eager(self, feats):
        """Heads on imagined features (N, H+1, F): rewards, continues, values, λ-returns, weights."""
        cfg = self.cfg
        with torch.no_grad():
            reward = self.reward(feats).pred()  # (N, H+1)
            cont = self.cont(feats).pred()  # (N, H+1)
        slow = self._slow_value(feats[:, :-1])  # (N, H) or None
        critic_out = self.critic(feats)  # (N, H+1) distribution with gradient into the critic
        value = critic_out.pred().detach()
        returns = L.lambda_return(reward, cont, value, cfg.return_lambda)  # (N, H)
        weight = L.trajectory_weights(cont)  # (N, H)
        return reward, cont, critic_out, value, returns, weight, slow

    def _actor_critic_losses_eager(self, params, actions, critic_out, value, returns, weight, slow, scale):
        cfg = self.cfg
        advantage = L.advantage(returns, value, scale)
        logp = self.actor.logp(params, actions)
        entropy = self.actor.entropy(params)
        losses = {"policy": L.policy_loss(logp, entropy, advantage, weight, cfg)}
        losses["value"] = weight.detach() * L.value_loss(critic_out[:, :-1], returns, slow, cfg)
        return losses, imagination_metrics(returns, scale, self.retnorm.offset(), entropy, weight, value, advantage)

    def _replay_value_loss(self, data, feat, boot):
        cfg = self.cfg
        b, t = boot.shape
        value_feat = feat if cfg.on("reward_grad") else feat.detach()
        out = self.critic(value_feat.reshape(b, t, -1))
        targets = L.repval_targets(
            data["reward"][:, 1:], data["is_terminal"][:, 1:], data["is_last"][:, 1:], boot, cfg)
        slow = self._slow_value(value_feat.detach())
        slow = None if slow is None else slow.reshape(b, t)
        return L.replay_value_loss(out, targets, slow, data["is_last"][:, 1:], cfg)

    @torch.no_grad()
    def _slow_value(self, feats: torch.Tensor) -> torch.Tensor | None:
        """The slow critic's value of ``feats`` (no gradient), the target of the critic's
        regulariser; None when the slow_critic technique is off (no slow copy is kept)."""
        if self.slow_critic is None:
            return None
        return self.slow_critic(feats).pred()

    @torch.no_grad()
    def _update_slow_critic(self) -> None:
        if self.slow_critic is None:
            return
        slow = list(self.slow_critic.parameters())
        fast = list(self.critic.parameters())
        torch._foreach_lerp_(slow, fast, self.cfg.slow_rate)

    # ---- checkpoints ------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """The full training state: networks, slow critic, optimiser, return statistics,
        counters and random generators."""
        return {
            "config": self.cfg.to_dict(),
            "modules": {k: v.clone() for k, v in self.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "rng": {"train": self.train_generator.get_state(), "act": self.act_generator.get_state()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        mine, theirs = self.cfg.to_dict(), canonical(state["config"])  # checkpoints may hold former names
        differ = sorted(k for k in mine if k not in IDENTITY_EXCLUDED and mine.get(k) != theirs.get(k)
                        and not (k in PLUGIN_FIELDS and not mine.get(k) and not theirs.get(k)))
        if differ:
            raise ValueError(f"checkpoint configuration differs in {', '.join(differ)}")
        self.load_state_dict(state["modules"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.train_generator.set_state(state["rng"]["train"])
        self.act_generator.set_state(state["rng"]["act"])
