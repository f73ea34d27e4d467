"""Output heads and distributions.

Three techniques live here, each with its "off" branch beside it:
- ``twohot``: reward and critic heads (``ValueHead``) predict symexp two-hot bins, or a scalar.
- ``unimix``: the mix of 1% uniform into categorical probabilities (``mixed_logprobs``).
- ``zero_init``: the initial output weights of reward, critic (0) and actor (× 0.01).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import AgentConfig
from .functional import symexp
from .nets import MLP, Linear


# --------------------------------------------------------------------------------------------
# twohot technique
# --------------------------------------------------------------------------------------------

def twohot_bins(n: int) -> torch.Tensor:
    """``symexp(linspace(−20, 20, n))`` built as the mirror image of its negative half.

    Mirroring makes the bins exactly antisymmetric, so the centre bin is exactly 0.
    """
    half = symexp(torch.linspace(-20.0, 0.0, (n + 1) // 2, dtype=torch.float64)).float()
    return torch.cat([half, -half[:-1].flip(0)])


def twohot_indices(y: torch.Tensor, bins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two neighbouring bins of raw targets y (...) and the weight of the upper one:
    linear interpolation in raw space; beyond the ends all weight goes to the end bin."""
    y = y.float().contiguous()
    n = bins.shape[0]
    above = torch.bucketize(y, bins, right=True).clamp(1, n - 1)  # first bin > y (or the last)
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_hi = ((y - lo) / (hi - lo)).clamp(0.0, 1.0)
    return below, above, w_hi


def twohot_encode(y: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Two-hot weights (..., n) of raw targets y (...)."""
    below, above, w_hi = twohot_indices(y, bins)
    weights = torch.zeros(*y.shape, bins.shape[0], device=y.device)
    weights.scatter_(-1, below.unsqueeze(-1), (1.0 - w_hi).unsqueeze(-1))
    weights.scatter_add_(-1, above.unsqueeze(-1), w_hi.unsqueeze(-1))
    return weights


def twohot_cross_entropy(logits: torch.Tensor, y: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """−Σ twohot(y)·log_softmax(logits) = logsumexp(logits) − Σ twohot(y)·logits, reading only the
    two non-zero target bins (no log-softmax over all bins is materialised)."""
    below, above, w_hi = twohot_indices(y, bins)
    logits = logits.float()
    at_below = logits.gather(-1, below.unsqueeze(-1)).squeeze(-1)
    at_above = logits.gather(-1, above.unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(logits, -1) - ((1.0 - w_hi) * at_below + w_hi * at_above)


def twohot_mean(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Σ softmax·bins, as the official agent's compiled program computes it.

    The official code pairs each bin's term with its mirror bin's (bins[mirror(i)] = −bins[i]) so
    that symmetric probabilities would predict exactly 0. Compiled by XLA, each pair is one fused
    multiply-add, fma(p_i, bins_i, round(p_mirror·bins_mirror)) for the negative bin i: the product
    of the negative side is not rounded, so a pair of equal probabilities leaves the rounding error
    of its positive product, and the pairs sum to O(2⁻²⁴·Σ|p·bin|). With uniform probabilities (a
    zero-initialised head: 1/255 on bins up to ±4.85e8) that is about −0.16 on every state, and
    while the outer bins keep probability it varies from state to state by about 0.1: the early
    imagined rewards, values and advantages of the official agent carry it, and its policy learns
    from those advantages (README, "The same update at the official initial state"). So ours computes each pair
    the same way: the negative bin's product exactly (a product of two float32 numbers fits in a
    float64), plus the positive bin's product rounded to float32, rounded once to float32."""
    probs = torch.softmax(logits.float(), -1)
    m = bins.shape[0] // 2
    negative = probs[..., :m].flip(-1).double() * bins[:m].flip(0).double()  # exact
    positive = probs[..., m + 1:] * bins[m + 1:]  # rounded to float32
    return (negative + positive.double()).float().sum(-1)  # the centre bin is 0


def mirrored_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias`` over mirrored bins (an odd count, the centre bin in the middle),
    computed so that a bin and its mirror get the same arithmetic, forward and backward.

    A bin and its mirror that start alike (the zero-initialised head) and that no target tells
    apart (the outer bins) then keep bitwise equal weights, logits and probabilities, so their
    products with bins of ±4.85e8 cancel in ``twohot_mean`` as the official agent's do. A plain
    linear layer breaks that: summing the bias gradient over the batch, the CPU kernel adds the
    last 31 of the 255 columns in another order than the first 31, their weights drift apart by
    a few units in the last place, and the outer bins, weighted by up to 4.85e8, put predictions
    of ±5 on states that should be near 0 (README, "The mirrored bins"). Here both halves are
    one batch of two: the same matrix product and the same reduction for each, at the same
    positions; the centre bin is a column of its own."""
    m = weight.shape[0] // 2
    flat = x.reshape(-1, x.shape[-1])
    halves_w = torch.stack([weight[:m], weight[m + 1:].flip(0)])  # (2, m, F): bin i beside its mirror
    halves_b = torch.stack([bias[:m], bias[m + 1:].flip(0)])  # (2, m)
    halves = torch.matmul(flat, halves_w.transpose(1, 2)) + halves_b.unsqueeze(1)  # (2, N, m)
    centre = F.linear(flat, weight[m:m + 1], bias[m:m + 1])  # (N, 1)
    out = torch.cat([halves[0], centre, halves[1].flip(-1)], -1)
    return out.reshape(*x.shape[:-1], weight.shape[0])


class TwoHotDist:
    """The output of a reward or critic head with twohot on: logits over symexp-spaced bins.
    ``pred()`` is the expectation over the bins, ``loss(target)`` the cross-entropy against the
    target's two-hot encoding. Indexing selects along the leading (batch/time) dims."""

    def __init__(self, logits: torch.Tensor, bins: torch.Tensor):
        self.logits, self.bins = logits, bins

    def pred(self) -> torch.Tensor:
        return twohot_mean(self.logits, self.bins)

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        return twohot_cross_entropy(self.logits, target, self.bins)

    def __getitem__(self, index) -> TwoHotDist:
        return TwoHotDist(self.logits[index], self.bins)


class MSEDist:
    """The output of a reward or critic head with twohot off: one scalar per input, its own
    prediction, trained by squared error."""

    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    def pred(self) -> torch.Tensor:
        return self.mean

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        return (self.mean - target.float()).square()

    def __getitem__(self, index) -> MSEDist:
        return MSEDist(self.mean[index])


class BernoulliDist:
    """The continue head's output: a Bernoulli logit; ``pred()`` is the probability, ``loss`` the
    binary cross-entropy against a (possibly soft) target."""

    def __init__(self, logit: torch.Tensor):
        self.logit = logit

    def pred(self) -> torch.Tensor:
        return torch.sigmoid(self.logit)

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.logit, target.float(), reduction="none")

    def __getitem__(self, index) -> BernoulliDist:
        return BernoulliDist(self.logit[index])


class ValueHead(nn.Module):
    """Reward head and critic: MLP → 255 two-hot logits (twohot on, a ``TwoHotDist``) or one
    scalar (off, an ``MSEDist``)."""

    def __init__(self, fan_in: int, layers: int, cfg: AgentConfig):
        super().__init__()
        self.twohot = cfg.on("twohot")
        self.mlp = MLP(fan_in, cfg.units, layers)
        self.out = Linear(self.mlp.out_width, cfg.bins if self.twohot else 1)
        if cfg.on("zero_init"):
            nn.init.zeros_(self.out.weight)
        self.register_buffer("bins", twohot_bins(cfg.bins), persistent=False)

    def forward(self, feat: torch.Tensor) -> TwoHotDist | MSEDist:
        """feat (..., F) → the distribution of the predicted value, computed in fp32."""
        hidden = self.mlp(feat)
        if not self.twohot:
            return MSEDist(self.out(hidden).float()[..., 0])
        return TwoHotDist(mirrored_linear(hidden, self.out.weight, self.out.bias).float(), self.bins)


class ContinueHead(nn.Module):
    """Bernoulli logit of continuing, trained against the soft target γ·(1 − is_terminal)."""

    def __init__(self, fan_in: int, cfg: AgentConfig):
        super().__init__()
        self.mlp = MLP(fan_in, cfg.units, cfg.con_layers)
        self.out = Linear(self.mlp.out_width, 1)

    def forward(self, feat: torch.Tensor) -> BernoulliDist:
        return BernoulliDist(self.out(self.mlp(feat)).float()[..., 0])


# --------------------------------------------------------------------------------------------
# unimix technique
# --------------------------------------------------------------------------------------------

def mixed_logprobs(logits: torch.Tensor, mix: float) -> torch.Tensor:
    """Log of ``(1 − mix)·softmax(logits) + mix/K`` over the last dim; ``mix = 0`` is plain."""
    logits = logits.float()
    if mix <= 0:
        return F.log_softmax(logits, -1)
    probs = torch.softmax(logits, -1)
    return torch.log((1.0 - mix) * probs + mix / logits.shape[-1])


def latent_mix(cfg: AgentConfig) -> float:
    """The uniform mix of the RSSM's prior and posterior."""
    return cfg.latent_unimix if cfg.on("unimix") else 0.0


def actor_mix(cfg: AgentConfig) -> float:
    """The uniform mix of the discrete actor (``actor_unimix = 0`` reproduces the official head)."""
    return cfg.actor_unimix if cfg.on("unimix") else 0.0


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------

def sample_index(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One categorical sample per row of probs (..., K) by inverting the CDF at ``uniform``
    (..., 1) drawn from U[0, 1); returns indices (...). An integer ``uniform`` holds the sampled
    indices themselves (draws injected by ``Agent.inject_draws``) and is returned as it is."""
    if not uniform.is_floating_point():
        return uniform[..., 0].long()
    index = (probs.cumsum(-1) < uniform).sum(-1)
    return index.clamp(max=probs.shape[-1] - 1)


def sample_onehot_st(logprobs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One-hot sample with straight-through gradients through the probabilities."""
    probs = logprobs.exp()
    onehot = F.one_hot(sample_index(probs.detach(), uniform), probs.shape[-1]).to(probs.dtype)
    return onehot + (probs - probs.detach())  # forward value exactly one-hot


# --------------------------------------------------------------------------------------------
# actor
# --------------------------------------------------------------------------------------------

class Actor(nn.Module):
    """Policy: categorical over action indices, or Normal(tanh(μ), σ) per action dimension.

    Continuous actions have two output layers, ``out`` (μ) and ``std_out`` (σ), as the official
    head does: AGC clips each parameter tensor by its own norm, so one merged layer would be
    clipped differently."""

    def __init__(self, fan_in: int, act_dim: int, discrete: bool, cfg: AgentConfig):
        super().__init__()
        self.discrete = discrete
        self.act_dim = act_dim
        self.mix = actor_mix(cfg)
        self.min_std, self.max_std = cfg.actor_min_std, cfg.actor_max_std
        self.mlp = MLP(fan_in, cfg.units, cfg.actor_layers)
        self.out = Linear(self.mlp.out_width, act_dim)
        self.std_out = None if discrete else Linear(self.mlp.out_width, act_dim)
        if cfg.on("zero_init"):
            with torch.no_grad():
                for layer in (self.out, self.std_out):
                    if layer is not None:
                        layer.weight.mul_(0.01)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Distribution parameters: log-probs (..., A) or mean and std (..., 2A), in fp32."""
        hidden = self.mlp(feat)
        out = self.out(hidden).float()
        if self.discrete:
            return mixed_logprobs(out, self.mix)
        mean, std = out, self.std_out(hidden).float()
        std = (self.max_std - self.min_std) * torch.sigmoid(std + 2.0) + self.min_std
        return torch.cat([torch.tanh(mean), std], -1)

    def noise_shape(self, n: int) -> tuple[int, int]:
        """Shape of the noise ``sample`` needs for N rows: one uniform, or A standard normals."""
        return (n, 1) if self.discrete else (n, self.act_dim)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """The most likely action: one-hot of the largest probability, or the mean tanh(μ)."""
        if self.discrete:
            return F.one_hot(params.argmax(-1), self.act_dim).float()
        return params.chunk(2, -1)[0]

    def sample(self, params: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Discrete: one-hot (..., A) from uniform noise; continuous: mean + std·noise, unclipped."""
        if self.discrete:
            return F.one_hot(sample_index(params.exp(), noise), self.act_dim).float()
        mean, std = params.chunk(2, -1)
        return mean + std * noise

    def logp(self, params: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return (params * action).sum(-1)
        mean, std = params.chunk(2, -1)
        z = (action - mean) / std
        return (-0.5 * z.square() - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return -(params.exp() * params).sum(-1)
        _, std = params.chunk(2, -1)
        return (0.5 + 0.5 * math.log(2 * math.pi) + std.log()).sum(-1)
