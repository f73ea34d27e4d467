"""A plug-in that starts a run of ours from the official agent's initial parameters.

Which initial draw a run starts from matters early on (evidence/learning/README.md, "CartPole-v1's
warm-up gradient norm": over one recorded stream, every official draw gave a smaller gradient
norm than every one of ours). This runs our whole agent, loop and environment from an official
draw, so that a task's learning curve and metrics can be set beside our own seeds and the
official runs: the draw, or not the draw.

    # the official draw (tools/official/setup.sh's environment, run from its clone):
    $VENV/bin/python tools/official/stream_updates.py draw --task dmc_cartpole_swingup --init-seed 0 \
        --out ~/draws/swingup_0.npz
    # our run from it (the variant is full@official_init: its own folder):
    dreamer-bench run --suite learning --tasks dmc_cartpole_swingup --seeds 0, --set actor_unimix=0 \
        --set replay_prefetch=true --plugin tools/official/official_init.py \
        --set official_init.params=$HOME/draws/swingup_0.npz --results ~/runs/official_init

Before the first update the agent acts with its own draw (the actor's output layer is scaled by
0.01, so its first actions are near uniform either way); at the first update, before any gradient,
the official arrays (the slow critic's included) replace every parameter. A run resumed after
its first update keeps what it has learned (the checkpoint's parameters).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamer_bench.agent.official import load_official
from dreamer_bench.agent.plugins import Plugin, PluginError


class OfficialInit(Plugin):
    name = "official_init"
    on = "starts from the official agent's initial parameters (setting params: an .npz of stream_updates.py draw)"
    off = "our own initial parameters"
    settings = {"params": ""}

    @classmethod
    def check(cls, settings):
        path = Path(str(settings["params"])).expanduser()
        if not path.is_file():
            raise PluginError(f"official_init: no parameters file {str(path)!r}: set official_init.params=FILE.npz "
                              "(tools/official/stream_updates.py draw)")

    def __init__(self, cfg, obs_space, act_space, settings=()):
        super().__init__(cfg, obs_space, act_space, settings)
        self.check(self.settings)  # a resumed run or `predict` builds it without a grid's check
        self.path = Path(str(self.settings["params"])).expanduser()

    def transform_batch(self, batch, agent):
        if agent.updates == 0:  # the first update, before any gradient: the official draw replaces ours
            with np.load(self.path) as arrays:  # read when used: a resumed run past it never needs the 8 MB
                load_official(agent, {k: arrays[k] for k in arrays.files})
        return batch
