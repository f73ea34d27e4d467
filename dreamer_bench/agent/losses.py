"""The algorithm's pure loss functions, kept apart from the machinery that calls them.

Techniques that live here, each beside its "off" branch: ``kl_balance`` (``kl_scales``),
``free_bits`` (``kl_losses``), ``return_norm`` (``ReturnNorm``) and ``repval``
(``repval_targets``/``replay_value_loss``, called only when it is on).

Shapes: N = number of imagination starts (B·T), H = horizon, B×T = replay batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import AgentConfig


# --------------------------------------------------------------------------------------------
# KL balancing and free bits
# --------------------------------------------------------------------------------------------

def categorical_kl(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) from log-probs (..., L, C), summed over the L latents → (...)."""
    return (lp.exp() * (lp - lq)).sum((-2, -1))


def kl_losses(post: torch.Tensor, prior: torch.Tensor, cfg: AgentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamics loss KL(sg(post) ‖ prior) and representation loss KL(post ‖ sg(prior)), per (b, t).

    free_bits on: each is max(free_nats, KL) after summing over latents (no gradient below it).
    """
    dyn = categorical_kl(post.detach(), prior)
    rep = categorical_kl(post, prior.detach())
    if cfg.on("free_bits"):
        dyn = torch.clamp(dyn, min=cfg.free_nats)
        rep = torch.clamp(rep, min=cfg.free_nats)
    return dyn, rep


def kl_scales(cfg: AgentConfig) -> tuple[float, float]:
    """(dynamics, representation) loss scales: balanced 1.0 / 0.1, or both their mean (0.55)."""
    if cfg.on("kl_balance"):
        return cfg.scale_dyn, cfg.scale_rep
    mean = (cfg.scale_dyn + cfg.scale_rep) / 2
    return mean, mean


# --------------------------------------------------------------------------------------------
# returns
# --------------------------------------------------------------------------------------------

def lambda_returns(reward: torch.Tensor, disc: torch.Tensor, value: torch.Tensor, lam) -> torch.Tensor:
    """The λ-return recursion along a sequence of T steps, in fp32; every input (N, T), ``lam`` a
    number or (N, T). R_{T−1} = v_{T−1} and
    R_t = r_{t+1} + disc_{t+1}·((1 − λ_{t+1})·v_{t+1} + λ_{t+1}·R_{t+1}); returns R_0..R_{T−1}.
    Imagination (``lambda_return``) and the replay critic (``repval_targets``) both use it."""
    reward, disc, value = reward.float(), disc.float(), value.float()
    per_step = isinstance(lam, torch.Tensor)
    ret = value[:, -1]
    rets = [ret]
    for t in reversed(range(value.shape[1] - 1)):
        step_lam = lam[:, t + 1] if per_step else lam
        ret = reward[:, t + 1] + disc[:, t + 1] * ((1 - step_lam) * value[:, t + 1] + step_lam * ret)
        rets.append(ret)
    return torch.stack(rets[::-1], 1)


def lambda_return(reward: torch.Tensor, cont: torch.Tensor, value: torch.Tensor, lam: float) -> torch.Tensor:
    """λ-returns of an imagined trajectory of H + 1 states, in fp32.

    reward[:, t] is the reward predicted for state t (it arrives with s_t), cont[:, t] the
    continue probability of s_t (γ is inside it), value[:, t] = v(s_t); all (N, H + 1).
    R_H = v_H and R_t = r_{t+1} + c_{t+1}·((1 − λ)·v_{t+1} + λ·R_{t+1}); returns R_0..R_{H−1} (N, H).
    """
    return lambda_returns(reward, cont, value, lam)[:, :-1]


def continue_target(is_terminal: torch.Tensor, cfg: AgentConfig) -> torch.Tensor:
    """Soft target of the continue head: γ·(1 − is_terminal); γ is applied nowhere else."""
    return cfg.discount * (1.0 - is_terminal.float())


def trajectory_weights(cont: torch.Tensor) -> torch.Tensor:
    """w_t = Π_{i=0..t} c_i for t = 0..H−1, including the start state's own c_0; cont (N, H + 1)."""
    return torch.cumprod(cont[:, :-1], 1)


def percentiles(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """torch.quantile(x, q) of a 1-D tensor (linear interpolation between the order statistics
    around q·(n − 1)), from ops torch.func.vmap can batch."""
    ordered = x.sort().values
    pos = q * (x.shape[0] - 1)
    below = pos.floor().long()
    above = pos.ceil().long()
    return torch.lerp(ordered[below], ordered[above], pos - below)


class ReturnNorm(nn.Module):
    """EMAs of the 5th and 95th percentiles of the imagined returns (rate 0.01, from 0, not
    debiased). ``update`` moves them with this batch first; the scale is max(1, hi − lo).
    return_norm off: the scale is 1 and no statistics are kept."""

    def __init__(self, cfg: AgentConfig):
        super().__init__()
        self.enabled = cfg.on("return_norm")
        self.rate, self.limit = cfg.retnorm_rate, cfg.retnorm_limit
        self.register_buffer("quantiles", torch.tensor([cfg.retnorm_low, cfg.retnorm_high]) / 100.0)
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> torch.Tensor:
        """Move the EMAs with all returns of the batch, then return the scale S."""
        if not self.enabled:
            return torch.ones((), device=returns.device)
        low, high = percentiles(returns.detach().float().flatten(), self.quantiles)
        # x ← x + rate·(new − x), written out: torch.func.vmap has batching rules for these ops
        # (a packed update moves every seed's statistics at once), not for lerp_
        self.low.add_(self.rate * (low - self.low))
        self.high.add_(self.rate * (high - self.high))
        return self.scale()

    def scale(self) -> torch.Tensor:
        if not self.enabled:
            return torch.ones((), device=self.low.device)
        return torch.clamp(self.high - self.low, min=self.limit)

    def offset(self) -> torch.Tensor:
        """The offset of the normalised returns (R − offset)/S: the low percentile's EMA (0 off)."""
        return self.low.clone() if self.enabled else torch.zeros((), device=self.low.device)


# --------------------------------------------------------------------------------------------
# actor and critic
# --------------------------------------------------------------------------------------------

def advantage(returns: torch.Tensor, value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(R − v)/S for the H imagined steps: returns (N, H), values (N, H + 1), S the return scale."""
    return (returns - value[:, :-1]) / scale


def policy_loss(logp, entropy, advantage, weight, cfg: AgentConfig) -> torch.Tensor:
    """REINFORCE: −sg(w)·(log π(a|s)·sg(A) + η·H[π(s)]), all (N, H)."""
    return -weight.detach() * (logp * advantage.detach() + cfg.actor_entropy * entropy)


def policy_loss_backprop(entropy, advantage, weight, cfg: AgentConfig) -> torch.Tensor:
    """Backpropagation through the imagined dynamics (the 2023 agent's continuous actor):
    −sg(w)·(A + η·H[π(s)]), all (N, H); A keeps its gradient into the sampled actions."""
    return -weight.detach() * (advantage + cfg.actor_entropy * entropy)


def value_loss(dist, target: torch.Tensor, slow_pred: torch.Tensor | None, cfg: AgentConfig) -> torch.Tensor:
    """The critic's loss (its output distribution ``dist``) against sg(target), plus the
    slow-critic regulariser towards sg(slow_pred) when a slow critic is kept."""
    loss = dist.loss(target.detach())
    if slow_pred is not None:
        loss = loss + cfg.scale_slowreg * dist.loss(slow_pred.detach())
    return loss


def repval_targets(reward, is_terminal, is_last, boot, cfg: AgentConfig) -> torch.Tensor:
    """λ-returns along the replayed sequence, all (B, T): stored reward and terminal flag of each
    step, ``boot`` = the imagined λ-return from each replayed state.

    R_{T−1} = B_{T−1};  R_t = r_{t+1} + γ(1 − term_{t+1})·((1 − λ'_{t+1})·B_{t+1} + λ'_{t+1}·R_{t+1}),
    with λ' = λ·(1 − is_last).
    """
    disc = cfg.discount * (1.0 - is_terminal.float())
    lam = cfg.replay_lambda * (1.0 - is_last.float())
    return lambda_returns(reward, disc, boot, lam)


def replay_value_loss(dist, targets, slow_pred, is_last, cfg: AgentConfig) -> torch.Tensor:
    """Replay critic loss (B, T − 1) for t ≤ T − 2 from the critic's output ``dist`` (B, T), zero
    where step t is the last of an episode."""
    loss = value_loss(dist[:, :-1], targets[:, :-1], None if slow_pred is None else slow_pred[:, :-1], cfg)
    return loss * (1.0 - is_last[:, :-1].float())
