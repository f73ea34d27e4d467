"""Layers, encoders and decoders.

Every hidden layer is Linear (or Conv) → RMSNorm → SiLU; output layers have no norm. The
``symlog`` technique lives here: it decides how vector observations enter the encoder and what
the vector decoder regresses (``vector_input`` and ``vector_target``).

Shapes: N = any flattened leading batch, F = feature width (deter + latents·classes).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .config import AgentConfig
from .functional import init_weight_, symlog

IMAGE_SIZE = 64


# --------------------------------------------------------------------------------------------
# symlog technique: one place for both branches
# --------------------------------------------------------------------------------------------

def vector_input(x: torch.Tensor, cfg: AgentConfig) -> torch.Tensor:
    """How a continuous vector observation enters the encoder."""
    return symlog(x) if cfg.on("symlog") else x


def vector_target(x: torch.Tensor, cfg: AgentConfig) -> torch.Tensor:
    """What the vector decoder regresses (its output is in this space)."""
    return symlog(x) if cfg.on("symlog") else x


# --------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """RMSNorm over the last dim (or ``dim``), ε 1e-4, learnable scale from 1, no shift, in fp32."""

    def __init__(self, width: int, eps: float = 1e-4, dim: int = -1):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))
        self.eps = eps
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        if self.dim == -1:
            out = F.rms_norm(x, (x.shape[-1],), self.scale, self.eps)
        else:  # channel dim of an NCHW tensor
            rms = torch.rsqrt(x.square().mean(self.dim, keepdim=True) + self.eps)
            out = x * rms * self.scale.view(-1, 1, 1)
        return out.to(dtype)


class Linear(nn.Linear):
    """nn.Linear with the official truncated-normal initialisation and zero bias."""

    def __init__(self, fan_in: int, out: int, scale: float = 1.0):
        super().__init__(fan_in, out)
        init_weight_(self.weight, fan_in, scale)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Inputs with several leading dims are folded into one first. F.linear does the same for a
        # plain weight, but under vmap (agent/packed.py: one weight per seed) its matmul broadcasts
        # the weight over the leading dims and copies it: for imagined features (1024, 15, 2560) of
        # size12m a 2.6 MB weight became a 5.4 GB copy, a third of a packed update's time.
        if x.dim() <= 2:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias).reshape(*x.shape[:-1], -1)


class Dense(nn.Module):
    """Hidden layer: Linear → RMSNorm → SiLU."""

    def __init__(self, fan_in: int, out: int):
        super().__init__()
        self.linear = Linear(fan_in, out)
        self.norm = RMSNorm(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(self.linear(x)))


class MLP(nn.Sequential):
    """``layers`` hidden layers of ``units`` (no output layer)."""

    def __init__(self, fan_in: int, units: int, layers: int):
        super().__init__(*[Dense(fan_in if i == 0 else units, units) for i in range(layers)])
        self.out_width = units if layers else fan_in


class BlockLinear(nn.Module):
    """Block-diagonal linear map: input (N, G·i) → output (N, G·o), G independent blocks.

    The initialiser's fan-in is the full input width G·i, as in the official code.
    """

    def __init__(self, fan_in: int, out: int, blocks: int):
        super().__init__()
        if fan_in % blocks or out % blocks:
            raise ValueError(f"widths {fan_in}→{out} not divisible into {blocks} blocks")
        self.blocks = blocks
        self.weight = nn.Parameter(torch.empty(blocks, fan_in // blocks, out // blocks))
        self.bias = nn.Parameter(torch.zeros(out))
        init_weight_(self.weight, fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.blocks, x.shape[-1] // self.blocks).transpose(0, 1)  # (G, N, i)
        y = torch.bmm(x, self.weight)  # (G, N, o)
        y = y.transpose(0, 1).reshape(*lead, -1)  # (N, G·o)
        return y + self.bias


class Conv(nn.Conv2d):
    """k×k 'same' convolution with the official init (fan-in k²·C_in).

    Weights and activations are kept channels-last (NHWC in memory), the layout oneDNN runs
    fastest on CPU; observations arrive as NHWC, so no layout conversion is needed on the way in."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        init_weight_(self.weight, kernel * kernel * cin)
        nn.init.zeros_(self.bias)
        self.weight.data = self.weight.data.contiguous(memory_format=torch.channels_last)


# --------------------------------------------------------------------------------------------
# observation spaces
# --------------------------------------------------------------------------------------------

def split_keys(obs_space: Mapping[str, tuple]) -> tuple[list[str], list[str]]:
    """Image keys (H, W, C uint8) and vector keys (D,) from an ``{key: shape}`` mapping."""
    images = sorted(k for k, s in obs_space.items() if len(s) == 3)
    vectors = sorted(k for k, s in obs_space.items() if len(s) == 1)
    bad = [k for k, s in obs_space.items() if len(s) not in (1, 3)]
    if bad:
        raise ValueError(f"observation keys must be images (H, W, C) or vectors (D,): {bad}")
    for k in images:
        if tuple(obs_space[k][:2]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"image {k!r} must be {IMAGE_SIZE}×{IMAGE_SIZE}, got {obs_space[k]}")
    return images, vectors


# --------------------------------------------------------------------------------------------
# encoder
# --------------------------------------------------------------------------------------------

class Encoder(nn.Module):
    """Images (concatenated on channels) → 4 conv stages → flat; vectors → 3 hidden layers.

    obs: {key: (N, 64, 64, C) uint8 or (N, D) float} → embed (N, E).
    """

    def __init__(self, obs_space: Mapping[str, tuple], cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        self.image_keys, self.vector_keys = split_keys(obs_space)
        self.out_width = 0
        if self.image_keys:
            cin = sum(obs_space[k][2] for k in self.image_keys)
            chans = [cfg.depth * m for m in (2, 3, 4, 4)]
            self.convs = nn.ModuleList()
            self.conv_norms = nn.ModuleList()
            for c in chans:
                self.convs.append(Conv(cin, c, cfg.kernel))
                self.conv_norms.append(RMSNorm(c, dim=1))
                cin = c
            self.out_width += chans[-1] * (IMAGE_SIZE // 16) ** 2
        if self.vector_keys:
            din = sum(obs_space[k][0] for k in self.vector_keys)
            self.mlp = MLP(din, cfg.units, cfg.enc_layers)
            self.out_width += self.mlp.out_width

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.image_keys:
            x = torch.cat([obs[k] for k in self.image_keys], -1)  # (N, H, W, C)
            x = x.permute(0, 3, 1, 2).float() / 255.0 - 0.5  # (N, C, H, W), channels-last in memory
            for conv, norm in zip(self.convs, self.conv_norms):
                x = F.silu(norm(F.max_pool2d(conv(x), 2)))
            parts.append(x.flatten(1))  # (N, 16·C)
        if self.vector_keys:
            x = torch.cat([obs[k].float() for k in self.vector_keys], -1)
            parts.append(self.mlp(vector_input(x, self.cfg)))
        return torch.cat(parts, -1) if len(parts) > 1 else parts[0]


# --------------------------------------------------------------------------------------------
# decoder
# --------------------------------------------------------------------------------------------

class Decoder(nn.Module):
    """Features → reconstruction of every observation key and its loss.

    Vectors: 3 hidden layers, one linear output per key, squared error summed over dims against
    ``vector_target``. Images: deter (block linear) + stoch (MLP) → 4×4 → 3 upsampling stages →
    64×64×C with a sigmoid, squared error against x/255 summed over H, W, C.
    """

    DECODER_BLOCKS = 8

    def __init__(self, obs_space: Mapping[str, tuple], cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        self.obs_space = dict(obs_space)
        self.image_keys, self.vector_keys = split_keys(obs_space)
        if self.vector_keys:
            self.mlp = MLP(cfg.feat, cfg.units, cfg.dec_layers)
            self.vector_out = nn.ModuleDict(
                {k: Linear(self.mlp.out_width, obs_space[k][0]) for k in self.vector_keys}
            )
        if self.image_keys:
            d = cfg.depth
            self.base = 4 * d
            flat = 16 * self.base
            blocks = math.gcd(self.DECODER_BLOCKS, math.gcd(cfg.deter, flat))
            self.from_deter = BlockLinear(cfg.deter, flat, blocks)
            self.from_stoch = nn.Sequential(Dense(cfg.stoch, 2 * cfg.units), Linear(2 * cfg.units, flat))
            self.space_norm = RMSNorm(self.base, dim=1)
            chans = [d * m for m in (4, 3, 2)]
            self.up_convs = nn.ModuleList()
            self.up_norms = nn.ModuleList()
            cin = self.base
            for c in chans:
                self.up_convs.append(Conv(cin, c, cfg.kernel))
                self.up_norms.append(RMSNorm(c, dim=1))
                cin = c
            self.image_channels = [obs_space[k][2] for k in self.image_keys]
            self.out_conv = Conv(cin, sum(self.image_channels), cfg.kernel)
        # activations channels-last (see Conv); a packed update (agent/packed.py) keeps the default
        # layout, which torch.func.vmap requires
        self.memory_format = torch.channels_last

    def forward(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """feat (N, F) → {key: prediction}: images (N, H, W, C) in [0, 1], vectors in target space."""
        out: dict[str, torch.Tensor] = {}
        if self.vector_keys:
            h = self.mlp(feat)
            for k in self.vector_keys:
                out[k] = self.vector_out[k](h)
        if self.image_keys:
            deter, stoch = feat[..., : self.cfg.deter], feat[..., self.cfg.deter:]
            x = self.from_deter(deter) + self.from_stoch(stoch)  # (N, 16·base)
            x = x.reshape(-1, self.base, 4, 4).contiguous(memory_format=self.memory_format)
            x = F.silu(self.space_norm(x))
            for conv, norm in zip(self.up_convs, self.up_norms):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = F.silu(norm(conv(x)))
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = torch.sigmoid(self.out_conv(x).float()).permute(0, 2, 3, 1)  # (N, 64, 64, ΣC)
            for k, part in zip(self.image_keys, torch.split(x, self.image_channels, -1)):
                out[k] = part
        return out

    def loss(self, feat: torch.Tensor, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-key reconstruction loss (N,), squared error summed over the observation's elements."""
        pred = self.forward(feat)
        losses = {}
        for k in self.vector_keys:
            target = vector_target(obs[k].float(), self.cfg)
            losses[k] = (pred[k].float() - target).square().sum(-1)
        for k in self.image_keys:
            target = obs[k].float() / 255.0
            losses[k] = (pred[k] - target).square().sum((-3, -2, -1))
        return losses
