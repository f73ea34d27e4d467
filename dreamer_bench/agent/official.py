"""The name map between the official DreamerV3's parameters and this agent's.

The official code (danijar/dreamerv3 at e3f0224, JAX/ninjax) names each parameter by its module
path, e.g. ``dyn/dynin0/kernel``, and stores dense kernels as (in, out), convolution kernels as
(kh, kw, in, out) and block-diagonal kernels as (blocks, in/blocks, out/blocks). ``to_ours``
turns a dict of official arrays — parameters, or anything of their shapes (gradients, optimiser
moments, update directions) — into this agent's ``state_dict`` names and layouts. It is a pure
re-indexing: every official number lands in exactly one place, none is changed. Where the two
layouts order the same values differently, the map permutes them:

==========================  =====================================  ==========================
official                    ours                                   re-indexing
==========================  =====================================  ==========================
``enc/mlp{i}``, ``…norm``   ``encoder.mlp.{i}.linear``, ``.norm``  kernel transposed
``enc/cnn{i}``, ``…norm``   ``encoder.convs.{i}``, ``conv_norms``  HWIO → OIHW
``dyn/dynin0..2``           ``rssm.core.in_deter/stoch/action``    transposed
``dyn/dynhid0``             ``rssm.core.hidden``                   block rows [deter, x] → [x, deter]
``dyn/dynhid0norm``         ``rssm.core.norm``
``dyn/dyngru``              ``rssm.core.gates``                    same layout
``dyn/obs0``, ``obslogit``  ``rssm.post_mlp.0``, ``post_out``      token rows reordered (below)
``dyn/prior{i}``            ``rssm.prior_mlp.{i}``, ``prior_out``
``dec/mlp/linear{i}``       ``decoder.mlp.{i}``                    input rows [stoch, deter] →
                                                                   [deter, stoch] (first layer)
``dec/vec/<key>/pred``      ``decoder.vector_out.<key>``
``dec/sp0``                 ``decoder.from_deter``                 outputs (g h w c) → (c h w)
``dec/sp1``, ``sp1norm``    ``decoder.from_stoch.0``
``dec/sp2``                 ``decoder.from_stoch.1``               outputs (h w c) → (c h w)
``dec/spnorm``              ``decoder.space_norm``
``dec/conv2, conv1, conv0`` ``decoder.up_convs.0, 1, 2``           HWIO → OIHW
``dec/imgout``              ``decoder.out_conv``                   HWIO → OIHW
``rew``, ``con``, ``val``   ``reward``, ``cont``, ``critic``       ``mlp/linear{i}`` →
                                                                   ``mlp.{i}.linear``
``pol/head/action/logits``  ``actor.out`` (discrete)
``…/mean``, ``…/stddev``    ``actor.out``, ``actor.std_out``       (continuous)
``slowval``                 ``slow_critic``                        as ``val``
==========================  =====================================  ==========================

Tokens: the official encoder flattens the last feature map as (h, w, c) and puts the vector
features before the image features; ours flattens (c, h, w) and puts images first.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from .config import AgentConfig

FEATURE_MAP = 4  # the encoder's last feature map is 4×4 (64×64 images, 4 stages of 2×2 pooling)


def _dense(prefix_ours: str, arrays: Mapping[str, np.ndarray], name: str, out: dict, rows=None, cols=None):
    """A Linear layer: official kernel (in, out) and bias → ours weight (out, in) and bias."""
    kernel = np.asarray(arrays[f"{name}/kernel"])
    kernel = kernel.reshape(kernel.shape[0], -1)
    bias = np.asarray(arrays[f"{name}/bias"]).reshape(-1)
    if rows is not None:
        kernel = kernel[rows]
    if cols is not None:
        kernel, bias = kernel[:, cols], bias[cols]
    out[f"{prefix_ours}.weight"] = kernel.T
    out[f"{prefix_ours}.bias"] = bias


def _norm(prefix_ours: str, arrays, name: str, out: dict):
    out[f"{prefix_ours}.scale"] = np.asarray(arrays[f"{name}/scale"]).reshape(-1)


def _conv(prefix_ours: str, arrays, name: str, out: dict):
    out[f"{prefix_ours}.weight"] = np.asarray(arrays[f"{name}/kernel"]).transpose(3, 2, 0, 1)
    out[f"{prefix_ours}.bias"] = np.asarray(arrays[f"{name}/bias"])


def _mlp(prefix_ours: str, arrays, prefix: str, layers: int, out: dict, first_rows=None):
    for i in range(layers):
        _dense(f"{prefix_ours}.{i}.linear", arrays, f"{prefix}/linear{i}", out, rows=first_rows if i == 0 else None)
        _norm(f"{prefix_ours}.{i}.norm", arrays, f"{prefix}/norm{i}", out)


def _head(prefix_ours: str, arrays, prefix: str, layers: int, out_name: str, out: dict):
    _mlp(f"{prefix_ours}.mlp", arrays, f"{prefix}/mlp", layers, out)
    _dense(f"{prefix_ours}.out", arrays, f"{prefix}/head/{out_name}", out)


def token_order(image_channels: int, vector_units: int) -> np.ndarray:
    """For each of our encoder outputs, the index of the same value in the official tokens."""
    ours = []
    n_vec = vector_units
    if image_channels:
        c, h, w = image_channels, FEATURE_MAP, FEATURE_MAP
        # ours (c, h, w) → official (h, w, c), after the vector part
        for ci in range(c):
            for hi in range(h):
                for wi in range(w):
                    ours.append(n_vec + (hi * w + wi) * c + ci)
    ours.extend(range(n_vec))
    return np.asarray(ours)


def to_ours(arrays: Mapping[str, np.ndarray], cfg: AgentConfig, obs_space: Mapping[str, tuple],
            discrete: bool) -> dict[str, np.ndarray]:
    """Official arrays (parameter names, parameter shapes) → ours, by ``state_dict`` name.

    ``arrays`` may hold the slow critic under ``slowval/…``; keys absent from it are skipped by
    module (e.g. no image keys without an image decoder)."""
    out: dict[str, np.ndarray] = {}
    images = sorted(k for k, s in obs_space.items() if len(s) == 3)
    vectors = sorted(k for k, s in obs_space.items() if len(s) == 1)
    deter, stoch, g = cfg.deter, cfg.stoch, cfg.blocks if cfg.on("block_gru") else 1
    # encoder
    for i in range(cfg.enc_layers if vectors else 0):
        _dense(f"encoder.mlp.{i}.linear", arrays, f"enc/mlp{i}", out)
        _norm(f"encoder.mlp.{i}.norm", arrays, f"enc/mlp{i}norm", out)
    for i in range(4 if images else 0):
        _conv(f"encoder.convs.{i}", arrays, f"enc/cnn{i}", out)
        _norm(f"encoder.conv_norms.{i}", arrays, f"enc/cnn{i}norm", out)
    # RSSM core
    _dense("rssm.core.in_deter.linear", arrays, "dyn/dynin0", out)
    _norm("rssm.core.in_deter.norm", arrays, "dyn/dynin0norm", out)
    _dense("rssm.core.in_stoch.linear", arrays, "dyn/dynin1", out)
    _norm("rssm.core.in_stoch.norm", arrays, "dyn/dynin1norm", out)
    _dense("rssm.core.in_action.linear", arrays, "dyn/dynin2", out)
    _norm("rssm.core.in_action.norm", arrays, "dyn/dynin2norm", out)
    hid = np.asarray(arrays["dyn/dynhid0/kernel"])  # (g, D/g + 3H, D/g): [deter slice, x0, x1, x2]
    own = deter // g
    out["rssm.core.hidden.weight"] = np.concatenate([hid[:, own:], hid[:, :own]], 1)
    out["rssm.core.hidden.bias"] = np.asarray(arrays["dyn/dynhid0/bias"])
    _norm("rssm.core.norm", arrays, "dyn/dynhid0norm", out)
    out["rssm.core.gates.weight"] = np.asarray(arrays["dyn/dyngru/kernel"])
    out["rssm.core.gates.bias"] = np.asarray(arrays["dyn/dyngru/bias"])
    # posterior: input [deter, tokens]
    img_channels = 4 * cfg.depth if images else 0
    vec_units = (cfg.units if cfg.enc_layers else sum(obs_space[k][0] for k in vectors)) if vectors else 0
    rows = np.concatenate([np.arange(deter), deter + token_order(img_channels, vec_units)])
    for i in range(cfg.post_layers):
        _dense(f"rssm.post_mlp.{i}.linear", arrays, f"dyn/obs{i}", out, rows=rows if i == 0 else None)
        _norm(f"rssm.post_mlp.{i}.norm", arrays, f"dyn/obs{i}norm", out)
    _dense("rssm.post_out", arrays, "dyn/obslogit", out)
    for i in range(cfg.prior_layers):
        _dense(f"rssm.prior_mlp.{i}.linear", arrays, f"dyn/prior{i}", out)
        _norm(f"rssm.prior_mlp.{i}.norm", arrays, f"dyn/prior{i}norm", out)
    _dense("rssm.prior_out", arrays, "dyn/priorlogit", out)
    # decoder
    if vectors:
        dec_rows = np.concatenate([stoch + np.arange(deter), np.arange(stoch)])  # ours [deter, stoch]
        _mlp("decoder.mlp", arrays, "dec/mlp", cfg.dec_layers, out, first_rows=dec_rows)
        for k in vectors:
            _dense(f"decoder.vector_out.{k}", arrays, f"dec/vec/{k}/pred", out)
    if images:
        base, n = 4 * cfg.depth, FEATURE_MAP
        blocks = np.asarray(arrays["dec/sp0/kernel"]).shape[0]
        per = base // blocks  # channels per block
        # official sp0 output (g, h, w, c') with channel g·per + c'; ours (channel, h, w)
        sp0 = np.asarray(arrays["dec/sp0/kernel"])  # (g, D/g, 16·per)
        cols = [(hw * per + c) for c in range(per) for hw in range(n * n)]
        out["decoder.from_deter.weight"] = sp0[:, :, cols]
        bias = np.asarray(arrays["dec/sp0/bias"]).reshape(blocks, n * n * per)[:, cols]
        out["decoder.from_deter.bias"] = bias.reshape(-1)
        _dense("decoder.from_stoch.0.linear", arrays, "dec/sp1", out)
        _norm("decoder.from_stoch.0.norm", arrays, "dec/sp1norm", out)
        hwc = [(h * n + w) * base + c for c in range(base) for h in range(n) for w in range(n)]
        _dense("decoder.from_stoch.1", arrays, "dec/sp2", out, cols=hwc)
        _norm("decoder.space_norm", arrays, "dec/spnorm", out)
        for ours_i, off_i in enumerate((2, 1, 0)):
            _conv(f"decoder.up_convs.{ours_i}", arrays, f"dec/conv{off_i}", out)
            _norm(f"decoder.up_norms.{ours_i}", arrays, f"dec/conv{off_i}norm", out)
        _conv("decoder.out_conv", arrays, "dec/imgout", out)
    # heads (two-hot heads name their output "logits", the official MSE heads "pred")
    value_out = "logits" if cfg.on("twohot") else "pred"
    _head("reward", arrays, "rew", cfg.rew_layers, value_out, out)
    _head("cont", arrays, "con", cfg.con_layers, "logit", out)
    _head("critic", arrays, "val", cfg.critic_layers, value_out, out)
    if f"slowval/head/{value_out}/kernel" in arrays:
        _head("slow_critic", arrays, "slowval", cfg.critic_layers, value_out, out)
    _mlp("actor.mlp", arrays, "pol/mlp", cfg.actor_layers, out)
    if discrete:
        _dense("actor.out", arrays, "pol/head/action/logits", out)
    else:
        _dense("actor.out", arrays, "pol/head/action/mean", out)
        _dense("actor.std_out", arrays, "pol/head/action/stddev", out)
    return out


def load_official(agent, params: Mapping[str, np.ndarray]) -> None:
    """Load official parameters (and ``slowval/…``, if given) into ``agent`` in place."""
    mapped = to_ours(params, agent.cfg, agent.obs_space, agent.act_space.discrete)
    state = agent.state_dict()
    has_slow = any(k.startswith("slowval/") for k in params)
    missing = sorted(k for k in state if k not in mapped and not k.endswith(("bins", "quantiles", "low", "high"))
                     and not (k.startswith("slow_critic.") and not has_slow))
    if missing:
        raise KeyError(f"no official value for {', '.join(missing)}")
    with torch.no_grad():
        for name, value in mapped.items():
            if name.startswith("slow_critic.") and agent.slow_critic is None:
                continue  # slow_critic off keeps no slow copy
            target = state[name]
            value = torch.as_tensor(np.ascontiguousarray(value), dtype=target.dtype)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{name}: official shape {tuple(value.shape)}, ours {tuple(target.shape)}")
            target.copy_(value)
