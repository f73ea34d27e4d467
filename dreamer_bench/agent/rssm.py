"""Recurrent state-space model with the block-diagonal GRU core.

The ``block_gru`` technique lives in ``BlockGRU``: with it on the core has ``cfg.blocks`` blocks,
with it off one dense block of the same deter width.

State: deter (N, D) and stoch (N, L, C) one-hot; features = concat(deter, stoch flattened).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import AgentConfig
from .functional import seeded
from .heads import latent_mix, mixed_logprobs, sample_onehot_st
from .nets import MLP, BlockLinear, Dense, Linear, RMSNorm


class BlockGRU(nn.Module):
    """deter, stoch and action each pass Linear→RMSNorm→SiLU to ``hidden``; the concatenation is
    given to every block with that block's slice of deter; block linear → RMSNorm over the whole
    deter → SiLU → block linear to 3·deter, split per block into reset, candidate and update."""

    def __init__(self, deter: int, stoch: int, act_dim: int, hidden: int, blocks: int):
        super().__init__()
        self.deter, self.blocks = deter, blocks
        self.in_deter = Dense(deter, hidden)
        self.in_stoch = Dense(stoch, hidden)
        self.in_action = Dense(act_dim, hidden)
        per_block_in = 3 * hidden + deter // blocks
        self.hidden = BlockLinear(blocks * per_block_in, deter, blocks)
        self.norm = RMSNorm(deter)
        self.gates = BlockLinear(deter, 3 * deter, blocks)

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """deter (N, D), stoch (N, L·C), action (N, A) → next deter (N, D)."""
        n, g = deter.shape[0], self.blocks
        x = torch.cat([self.in_deter(deter), self.in_stoch(stoch), self.in_action(action)], -1)  # (N, 3H)
        # The block layer sees [x, deter slice of block g] for every block g. Its weight (G, 3H + D/G,
        # D/G) is applied in two parts, which is the same sum without copying x once per block:
        # the shared rows as one dense (3H, D) matrix, the deter rows block-diagonally.
        w = self.hidden.weight
        shared = w[:, : x.shape[-1]].permute(1, 0, 2).reshape(x.shape[-1], -1)  # (3H, D)
        own = torch.bmm(deter.reshape(n, g, -1).transpose(0, 1).to(x.dtype), w[:, x.shape[-1]:])  # (G, N, D/G)
        x = torch.addmm(self.hidden.bias, x, shared) + own.transpose(0, 1).reshape(n, -1)
        x = F.silu(self.norm(x))  # (N, D)
        gates = self.gates(x).reshape(n, g, 3, -1).float()  # (N, G, 3, D/G)
        reset, cand, update = gates.unbind(2)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1.0)
        prev = deter.float().reshape(n, g, -1)
        return (update * cand + (1.0 - update) * prev).reshape(n, -1)


class RSSM(nn.Module):
    def __init__(self, embed: int, act_dim: int, cfg: AgentConfig, core=None):
        """``core``: a function that builds a replacement of the recurrent core (a user's
        technique, agent/plugins.py), called where the core would be initialised."""
        super().__init__()
        self.cfg = cfg
        self.mix = latent_mix(cfg)
        with seeded(cfg.seed, "rssm.core"):
            # block_gru technique: off is one dense block of the same deter width.
            blocks = cfg.blocks if cfg.on("block_gru") else 1
            self.core = core() if core is not None else BlockGRU(cfg.deter, cfg.stoch, act_dim, cfg.hidden, blocks)
        with seeded(cfg.seed, "rssm.prior"):
            self.prior_mlp = MLP(cfg.deter, cfg.hidden, cfg.prior_layers)
            self.prior_out = Linear(self.prior_mlp.out_width, cfg.stoch)
        with seeded(cfg.seed, "rssm.post"):
            self.post_mlp = MLP(cfg.deter + embed, cfg.hidden, cfg.post_layers)
            self.post_out = Linear(self.post_mlp.out_width, cfg.stoch)

    # ---- pieces -----------------------------------------------------------------------------

    def initial(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero deter (N, D) and zero stoch (N, L, C): no learned initial state."""
        cfg = self.cfg
        return (torch.zeros(n, cfg.deter, device=device),
                torch.zeros(n, cfg.latents, cfg.classes, device=device))

    @staticmethod
    def scale_action(action: torch.Tensor) -> torch.Tensor:
        """a / max(1, |a|) per element, the denominator without gradient."""
        return action / torch.clamp(action.abs(), min=1.0).detach()

    def core_step(self, deter, stoch, action) -> torch.Tensor:
        """Previous deter (N, D), stoch (N, L, C), action (N, A) → deter (N, D)."""
        return self.core(deter, stoch.flatten(1), self.scale_action(action))

    def prior_logprobs(self, deter: torch.Tensor) -> torch.Tensor:
        """deter (..., D) → log-probs (..., L, C) of the (mixed) prior."""
        logits = self.prior_out(self.prior_mlp(deter))
        return mixed_logprobs(logits.reshape(*deter.shape[:-1], self.cfg.latents, self.cfg.classes), self.mix)

    def post_logprobs(self, deter: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        logits = self.post_out(self.post_mlp(torch.cat([deter, embed.to(deter.dtype)], -1)))
        return mixed_logprobs(logits.reshape(*deter.shape[:-1], self.cfg.latents, self.cfg.classes), self.mix)

    @staticmethod
    def features(deter: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        return torch.cat([deter, stoch.flatten(-2)], -1)

    # ---- steps ------------------------------------------------------------------------------

    def obs_step(self, deter, stoch, action, embed, is_first, uniform):
        """One posterior step. At ``is_first`` the previous deter, stoch and action are zeroed and
        the core still runs; ``uniform`` (N, L, 1) draws the sample.
        Returns deter (N, D), stoch sample (N, L, C), post log-probs (N, L, C)."""
        keep = (1.0 - is_first.float()).unsqueeze(-1)  # (N, 1)
        deter = deter * keep
        stoch = stoch * keep.unsqueeze(-1)
        action = action * keep
        deter = self.core_step(deter, stoch, action)
        post = self.post_logprobs(deter, embed)
        stoch = sample_onehot_st(post, uniform)
        return deter, stoch, post

    def img_step(self, deter, stoch, action, uniform):
        """One prior step: deter (N, D), stoch sample (N, L, C)."""
        deter = self.core_step(deter, stoch, action)
        stoch = sample_onehot_st(self.prior_logprobs(deter), uniform)
        return deter, stoch

    def latent_noise_shape(self, n: int) -> tuple[int, int, int]:
        return (n, self.cfg.latents, 1)

    def observe(self, deter, stoch, actions, embeds, is_first, uniform, step=None):
        """Posterior rollout over a sequence.

        deter (B, D), stoch (B, L, C): the state before the first step; actions (B, T, A): the
        previous action of each step; embeds (B, T, E); is_first (B, T).
        Returns deters (B, T, D), stochs (B, T, L, C), post log-probs (B, T, L, C).
        ``step`` replaces ``obs_step`` (e.g. by its compiled version).
        """
        step = step or self.obs_step
        deters, stochs, posts = [], [], []
        for t in range(actions.shape[1]):
            deter, stoch, post = step(deter, stoch, actions[:, t], embeds[:, t], is_first[:, t], uniform[t])
            deters.append(deter)
            stochs.append(stoch)
            posts.append(post)
        return torch.stack(deters, 1), torch.stack(stochs, 1), torch.stack(posts, 1)
