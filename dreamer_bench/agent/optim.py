"""One optimiser for all modules: adaptive gradient clipping, then LaProp (or Adam), with warm-up.

Techniques here: ``agc`` (``clip_adaptive``) and ``laprop`` (``Optimizer.step``), each beside its
"off" branch. Updates use foreach kernels: a handful of launches for all tensors.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .config import AgentConfig


def clip_adaptive(grads: list[torch.Tensor], params: list[torch.Tensor], clip: float, pmin: float) -> list[torch.Tensor]:
    """AGC per tensor: g / max(1, ‖g‖ / (clip · max(pmin, ‖θ‖))), as new tensors."""
    gnorm = torch.stack(torch._foreach_norm(grads))
    pnorm = torch.stack(torch._foreach_norm(params))
    factor = torch.clamp(gnorm / (clip * torch.clamp(pnorm, min=pmin)), min=1.0)
    return torch._foreach_div(grads, list(factor.unbind()))


def clip_global(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Plain global-norm clipping (config ``grad_clip``; not a technique), as new tensors."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    return torch._foreach_mul(grads, torch.clamp(max_norm / (norm + 1e-6), max=1.0).item())


class Optimizer:
    def __init__(self, params: Sequence[torch.nn.Parameter], cfg: AgentConfig):
        self.params = list(params)
        self.cfg = cfg
        self.laprop = cfg.on("laprop")
        self.agc = cfg.on("agc")
        self.eps = cfg.laprop_eps if self.laprop else cfg.adam_eps
        self.step_count = 0
        self.momentum = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]

    def learning_rate(self) -> float:
        """lr warmed up linearly from 0: the k-th update (k = 1, 2, …) uses lr·min(1, (k − 1)/warmup),
        as the official optax schedule does (it is evaluated at the count of earlier updates, so
        the first update has lr 0)."""
        if self.cfg.warmup <= 0:
            return self.cfg.lr
        return self.cfg.lr * min(1.0, max(0, self.step_count - 1) / self.cfg.warmup)

    @torch.no_grad()
    def step(self) -> dict[str, torch.Tensor]:
        """Apply one update from the parameters' ``.grad`` (left as they are: the raw gradient);
        returns the raw gradient norm."""
        params = [p for p in self.params if p.grad is not None]
        index = [i for i, p in enumerate(self.params) if p.grad is not None]
        grads = [p.grad for p in params]
        gnorm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if self.cfg.grad_clip > 0:
            grads = clip_global(grads, self.cfg.grad_clip)
        if self.agc:
            grads = clip_adaptive(grads, params, self.cfg.agc_clip, self.cfg.agc_pmin)
        self.step_count += 1
        lr = self.learning_rate()
        b1, b2, t = self.cfg.beta1, self.cfg.beta2, self.step_count
        m = [self.momentum[i] for i in index]
        v = [self.second[i] for i in index]
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, 1 - b2)
        denom = torch._foreach_sqrt(torch._foreach_div(v, 1 - b2 ** t))  # √v̂
        torch._foreach_add_(denom, self.eps)
        if self.laprop:  # normalise the gradient first, then take momentum of the result
            update = torch._foreach_div(grads, denom)
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, update, alpha=1 - b1)
            torch._foreach_add_(params, m, alpha=-lr / (1 - b1 ** t))
        else:  # Adam: momentum of the raw gradient, normalised afterwards
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, grads, alpha=1 - b1)
            step = torch._foreach_div(m, denom)
            torch._foreach_add_(params, step, alpha=-lr / (1 - b1 ** t))
        return {"grad_norm": gnorm}

    def state_dict(self) -> dict:
        return {"step": self.step_count, "momentum": [x.clone() for x in self.momentum],
                "second": [x.clone() for x in self.second]}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])
        for dst, src in zip(self.momentum, state["momentum"]):
            dst.copy_(src)
        for dst, src in zip(self.second, state["second"]):
            dst.copy_(src)
