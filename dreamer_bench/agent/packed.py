"""Packed updates: one training update of K agents that differ only in their seed, as one batched
computation.

Each agent keeps everything of its own — parameters, optimiser state and update counter (warm-up,
LaProp/Adam moments, AGC norms), return statistics, slow critic, random generators — and an update
of the group is, slice for slice, the update each agent's ``train`` would have made: every agent
draws its noise from its own generator in the order ``train`` would (``Agent.draws``), the forward
pass of all K runs as one computation (``torch.func.vmap`` over their stacked parameters, so every
matrix product is one batched product for the group), the gradients of the sum of the K losses are
each agent's own gradients (the agents share nothing), and then each agent takes its own optimiser
step. ``tests/test_packed.py`` checks the equality.

Not packed (``packable`` says why): agents with plug-ins (their hooks may keep Python state), the
2023 backprop actor (it toggles parameters' gradients during the pass), and compiled agents are
packed eagerly (the group is compiled as a whole, when asked, by ``PackedUpdate(compile=True)``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.func import functional_call, stack_module_state, vmap

from .agent import Agent


class NotPackable(ValueError):
    """Agents that cannot share one packed update: one line saying why."""


def packable(agents: Sequence[Agent]) -> str | None:
    """Why these agents cannot be packed together, or None when they can."""
    if not agents:
        return "no agents"
    first = agents[0]
    base = {k: v for k, v in first.cfg.to_dict().items() if k not in ("seed", "compile")}
    for a in agents[1:]:
        other = {k: v for k, v in a.cfg.to_dict().items() if k not in ("seed", "compile")}
        if other != base:
            differ = sorted(k for k in base if base[k] != other.get(k))
            return f"their configurations differ in {', '.join(differ)} (only seeds may differ)"
        if a.obs_space != first.obs_space or a.act_space != first.act_space:
            return "their observation or action spaces differ"
    if first.cfg.plugins:
        return "plug-ins are not packed (their hooks may keep state of their own)"
    if first.backprop_actor:
        return "the backprop actor (actor_grad_cont=backprop) is not packed"
    return None


class PackedUpdate:
    """Trains a group of agents with one batched update (see the module's docstring)."""

    def __init__(self, agents: Sequence[Agent], compile: bool = False):
        why = packable(agents)
        if why:
            raise NotPackable(why)
        self.agents = list(agents)
        first = self.agents[0]
        # The module the stacked parameters are applied to: an uncompiled twin of the first agent
        # (its own parameters are never used; its pure pieces must be plain functions under vmap).
        self.template = Agent(first.obs_space, first.act_space, first.cfg.replace(compile=False))
        self.template.load_state_dict(first.state_dict())
        self.template.decoder.memory_format = torch.contiguous_format  # vmap needs the default layout
        self.names = [k for k, _ in self.template.named_parameters()]
        self.buffer_names = [k for k, _ in self.template.named_buffers()]
        step = vmap(self._forward_one, in_dims=(0, 0, 0, 0), randomness="error")
        self._step = torch.compile(step, dynamic=False) if compile else step

    def _forward_one(self, params, buffers, data, draws):
        return functional_call(self.template, (params, buffers), (data, draws), strict=True)

    def train(self, batches: Sequence[dict[str, Any]], agents: Sequence[Agent] | None = None) -> list[dict[str, float]]:
        """One update of every agent, agent k on ``batches[k]``; returns each agent's metrics
        and writes each agent's posteriors back into its batch, as ``Agent.train`` does.
        ``agents``: another group of the same configuration (e.g. the members of a packed group
        that are due an update now); default: the group it was made with."""
        if agents is None:
            agents = self.agents
        elif agents is not self.agents:
            why = packable([self.agents[0], *agents])
            if why:
                raise NotPackable(why)
        if len(batches) != len(agents):
            raise ValueError(f"{len(agents)} agents need {len(agents)} batches, got {len(batches)}")
        if len(agents) == 1:  # nothing to batch: the agent's own update (and its compiled pieces)
            return [agents[0].train(batches[0])]
        datas = [a._prepare(b) for a, b in zip(agents, batches)]
        b, t = datas[0]["reward"].shape[0], datas[0]["reward"].shape[1] - 1
        for a, d in zip(agents, datas):
            if d["reward"].shape != datas[0]["reward"].shape:
                raise ValueError("the batches of a packed update must have one shape")
            for p in a.trained_parameters():
                p.grad = None
        draws = [a.draws(b, t) for a in agents]
        params, buffers = stack_module_state(list(agents))
        data = {k: torch.stack([d[k] for d in datas]) for k in datas[0]}
        noise = {k: torch.stack([d[k] for d in draws]) for k in draws[0]}
        total, losses, metrics, deters, stochs = self._step(params, buffers, data, noise)
        total.sum().backward()  # the agents share nothing: each slice's gradient is its own
        out = []
        with torch.no_grad():
            for k, agent in enumerate(agents):
                for name, p in agent.named_parameters():
                    g = params[name].grad
                    p.grad = None if g is None or not p.requires_grad else g[k]
                for name, buf in agent.named_buffers():
                    buf.copy_(buffers[name][k])  # the return statistics moved by this update
        for k, agent in enumerate(agents):
            mine = {key: v[k] for key, v in metrics.items()}
            mine.update({f"loss/{key}": v[k] for key, v in losses.items()})
            mine["loss/total"] = total[k].detach()
            agent.last_losses = {key: v[k].detach() for key, v in losses.items()}  # means (train keeps per step)
            out.append(agent._finish_update(batches[k], datas[k], mine, deters[k].detach(), stochs[k].detach()))
        return out
