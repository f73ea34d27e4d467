"""Export fixtures of the official DreamerV3 update for tests/test_official_equivalence.py.

Run with the official environment's Python (tools/official/setup.sh):

    $VENV/bin/python tools/official/export_fixtures.py --out tests/fixtures/official [CASE ...]

For each case (see CASES) it builds the official agent (commit e3f0224) for a synthetic task,
makes one replayed batch with episode starts, terminals and time limits inside it and random
context latents, and runs the official training code on it for 3 updates with lr warm-up 0. It
records, per case, in one compressed .npz:

- ``param/<name>``: the official initial parameters (ninjax names, official layouts);
- ``batch/<key>``: the batch as the official agent receives it (context step first);
- ``u<k>/post``, ``u<k>/prior``, ``u<k>/act``: the samples the official samplers drew in update
  k (one-hot indices of the posterior (B, T, L) and of the imagined prior (N, H, L); the imagined
  actions (N, H) indices or (N, H, A) values) and ``u<k>/act_noise`` for continuous actions (the
  normal noise (a − mean) / std, computed in float64 from the official policy's mean and std);
- ``u<k>/loss/<term>`` (B, T) per-step loss terms and ``u<k>/metric/<name>`` the official metrics;
- ``u<k>/grad/<name>``: every parameter's gradient (the raw gradient, before AGC);

  The size1m cases are kept small: their initial parameters are rounded to float16 before the
  official agent runs (so storing them in half loses nothing), their kernels are replaced by
  numbers drawn from a seed of each kernel's name with the official kernel's mean and std
  (``drawn_kernel``; the file keeps mean, std, shape, seed name and a CRC-32 in meta
  ``drawn_kernels``, not the kernel), and they hold the gradient of
  update 1 and the direction after update 3 in float16, each divided by its largest element
  (``scale/<key>`` holds that; rounding stays within 5e-4 of the tensor's norm, under the test's
  tolerance), and no moments, deter or head outputs;
- ``u<k>/ret``, ``u<k>/replay_ret``, ``u<k>/deter``: imagined λ-returns (N, H), replay returns
  (B, T), posterior deter (B, T, D) (intermediates, to locate a difference);
- after updates 1 and 3 (size1m: 3 only): ``u<k>/dir/<name>`` = (θ_k − θ_0) / lr,
  ``u<k>/opt/state/1/1/<name>`` and ``u<k>/opt/state/2/1/<name>`` LaProp's second and first
  moments (debug only) and ``u<k>/slow/<name>`` the slow critic; after every update
  ``u<k>/retnorm`` (lo, hi);
- ``slow0/<name>``, ``retnorm0``: the slow critic and return statistics at the start (see
  ``perturb_initial_state``: the zero-initialised heads get random weights, the statistics a
  non-zero start, so that returns and the return scale take part);
- ``meta``: a JSON string with the case, the official config overrides, shapes and versions.

The arrays are stored by tools/official/fixture_format.py's ``pack``: one flat array per dtype
and an index of names and shapes (a thousand small .npz entries cost more than their data).

Samples are recorded, not injected: the official agent samples with its own random generator,
and the test feeds the recorded samples to ours, so no rounding can flip a sample.
"""

from __future__ import annotations

import json
import pathlib
import sys
import zlib

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from fixture_format import drawn_kernel, save  # noqa: E402  (beside this script)

# name: (preset, obs kind, action kind, batch (B, T), extra official flags, what it is)
CASES = {
    "debug_vector_discrete": ("debug", "vector", "discrete", (4, 10), [], "debug preset"),
    "debug_vector_continuous": ("debug", "vector", "continuous", (4, 10), [], "debug preset"),
    "debug_image_discrete": ("debug", "image", "discrete", (2, 7), [], "debug preset"),
    "debug_image_continuous": ("debug", "image", "continuous", (2, 7), [], "debug preset"),
    "debug_both_discrete": ("debug", "both", "discrete", (2, 7), [], "debug preset, vector and image keys"),
    "debug_vector_discrete_free_nats0": (
        "debug", "vector", "discrete", (4, 10), ["--agent.dyn.rssm.free_nats", "0"], "free bits off"),
    "debug_vector_discrete_unimix0": (
        "debug", "vector", "discrete", (4, 10), ["--agent.dyn.rssm.unimix", "0"], "latent unimix off"),
    "debug_vector_continuous_agc0": (
        "debug", "vector", "continuous", (4, 10), ["--agent.opt.agc", "0"], "AGC off"),
    "debug_vector_discrete_repval0": (
        "debug", "vector", "discrete", (4, 10), ["--agent.loss_scales.repval", "0"], "replay critic loss off"),
    "debug_vector_discrete_retnorm_none": (
        "debug", "vector", "discrete", (4, 10), ["--agent.retnorm.impl", "none"], "return normalisation off"),
    "debug_vector_discrete_slowreg0": (
        "debug", "vector", "discrete", (4, 10),
        ["--agent.imag_loss.slowreg", "0", "--agent.repl_loss.slowreg", "0"], "slow critic regulariser off"),
    "debug_vector_discrete_kl_even": (
        "debug", "vector", "discrete", (4, 10),
        ["--agent.loss_scales.dyn", "0.55", "--agent.loss_scales.rep", "0.55"], "KL balance off"),
    "debug_vector_discrete_blocks1": (
        "debug", "vector", "discrete", (4, 10), ["--agent.dyn.rssm.blocks", "1"], "one GRU block"),
    "debug_vector_continuous_reward_grad0": (
        "debug", "vector", "continuous", (4, 10),
        ["--agent.reward_grad", "False", "--agent.repval_grad", "False"], "no reward/value gradient into the model"),
    "debug_vector_discrete_mse_heads": (
        "debug", "vector", "discrete", (4, 10),
        ["--agent.rewhead.output", "mse", "--agent.value.output", "mse"], "scalar MSE reward and critic heads"),
    "debug_proprio_continuous": (
        "debug", "proprio", "continuous", (4, 10), [], "debug preset, DMC-like vector keys (one a scalar)"),
    "size1m_vector_discrete": ("size1m", "vector", "discrete", (16, 64), [], "size1m, full batch"),
    "size1m_image_continuous": ("size1m", "image", "continuous", (2, 8), [], "size1m, images, small batch"),
    "debug_proprio_continuous_initial": (
        "debug", "proprio", "continuous", (4, 10), [], "the official initial state, one update"),
    "size1m_proprio_continuous_initial": (
        "size1m", "proprio", "continuous", (2, 8), [], "the official initial state, 255 bins, one update, forward only"),
}
# Cases at the official initial state (see ``perturb_initial_state``, which they skip): every
# two-hot head starts with zero logits, where the official program's expectation is not 0 but the
# rounding its fused pairs leave (heads.twohot_mean). One update only: after it the logits are no
# longer exactly 0, and where XLA's softmax and ours round a probability apart by one ulp, the
# pairs leave different rounding (of the same size). They also keep the bins the official heads
# used (``bins``; ours are within 1.3e-6 of them, which moves that rounding too).
INITIAL = {"debug_proprio_continuous_initial", "size1m_proprio_continuous_initial"}
FORWARD_ONLY = {"size1m_proprio_continuous_initial"}  # no gradients or directions (keeps the file small)
VECTOR_DIM = 5
# "proprio": several vector keys as dm_control gives them (walker's, smaller), one a scalar; the
# official encoder concatenates them, its decoder has one output layer per key
PROPRIO = {"height": ((), 1.0), "orientations": ((4,), 0.7), "velocity": ((3,), 6.0)}  # shape, scale
ACTIONS = 3  # classes of the discrete action, dims of the continuous one
UPDATES = 3
LR = 4e-5


def build_config(preset, flags, batch):
    import elements
    import ruamel.yaml as yaml
    from dreamerv3 import main as official_main

    folder = pathlib.Path(official_main.__file__).parent
    configs = yaml.YAML(typ="safe").load((folder / "configs.yaml").read_text())
    config = elements.Config(configs["defaults"])
    config = config.update(configs[preset])
    base = [
        "--jax.platform", "cpu", "--jax.compute_dtype", "float32", "--jax.prealloc", "False",
        "--jax.debug", "False", "--agent.opt.warmup", "0", "--agent.opt.lr", str(LR),
        "--batch_size", str(batch[0]), "--batch_length", str(batch[1]),
    ]
    return elements.Flags(config).parse(base + list(flags)), base + list(flags)


def spaces(obs_kind, act_kind):
    import elements

    obs = {
        "reward": elements.Space(np.float32),
        "is_first": elements.Space(bool),
        "is_last": elements.Space(bool),
        "is_terminal": elements.Space(bool),
    }
    if obs_kind in ("vector", "both"):
        obs["vector"] = elements.Space(np.float32, (VECTOR_DIM,))
    if obs_kind in ("image", "both"):
        obs["image"] = elements.Space(np.uint8, (64, 64, 3))
    if obs_kind == "proprio":
        obs.update({k: elements.Space(np.float32, shape) for k, (shape, _) in PROPRIO.items()})
    if act_kind == "discrete":
        act = {"action": elements.Space(np.int32, (), 0, ACTIONS)}
    else:
        act = {"action": elements.Space(np.float32, (ACTIONS,), -1.0, 1.0)}
    return obs, act


def make_batch(rng, obs_kind, act_kind, B, T, deter, stoch, classes):
    """A replayed batch of B windows of T + 1 steps (context step first)."""
    L = T + 1
    first = np.zeros((B, L), bool)
    last = np.zeros((B, L), bool)
    term = np.zeros((B, L), bool)
    first[0, 0] = True  # a window that starts an episode at its context step
    for b in range(B):
        cut = 2 + (3 * b) % (T - 3)  # an episode boundary inside every window
        first[b, cut + 1] = True
        last[b, cut] = True
        term[b, cut] = b % 2 == 0  # even windows end by termination, odd ones by a time limit
    term[1, L - 1] = True  # a terminal on the last trained step, whose successor is not replayed
    last[1, L - 1] = True
    reward = rng.normal(0, 2.0, (B, L)).astype(np.float32)
    reward[first] = 0.0
    reward[:, 3] = 0.0
    data = {"reward": reward, "is_first": first, "is_last": last, "is_terminal": term}
    if obs_kind in ("vector", "both"):
        vec = rng.normal(0, 1.0, (B, L, VECTOR_DIM)) * np.array([0.3, 1.0, 4.0, 20.0, 150.0])
        data["vector"] = vec.astype(np.float32)
    if obs_kind in ("image", "both"):
        data["image"] = rng.integers(0, 256, (B, L, 64, 64, 3), dtype=np.uint8)
    if obs_kind == "proprio":
        for k, (shape, scale) in PROPRIO.items():
            data[k] = (rng.normal(0, scale, (B, L, *shape))).astype(np.float32)
    if act_kind == "discrete":
        data["action"] = rng.integers(0, ACTIONS, (B, L)).astype(np.int32)
    else:  # policy samples are stored unclipped: some beyond [-1, 1]
        data["action"] = rng.normal(0, 0.8, (B, L, ACTIONS)).astype(np.float32)
    data["consec"] = np.zeros((B, L), np.int32)  # the first chunk of each window: use the context
    data["stepid"] = np.zeros((B, L, 20), np.uint8)
    # the stored latents: only the context step's are read (by both implementations), so the
    # later steps' are zeros (which keeps the files small)
    data["dyn/deter"] = np.zeros((B, L, deter), np.float32)
    data["dyn/deter"][:, 0] = rng.normal(0, 0.5, (B, deter))
    data["dyn/stoch"] = np.zeros((B, L, stoch, classes), np.float32)
    data["dyn/stoch"][:, 0] = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, (B, stoch))]
    return data


MODULES = ("dyn", "enc", "dec", "rew", "con", "pol", "val")  # the trained networks' parameter prefixes


def perturb_initial_state(state, rng, bins):
    """Give the zero-initialised output layers of the reward head, critic and slow critic random
    weights, and the return statistics a non-zero start (lo -2, hi 3): at the official initial
    state every predicted reward and value is exactly 0, so returns, advantages and the return
    scale would take no part in the comparison. The bin biases fall with |symlog(bin)| so that
    predictions stay moderate (with the debug preset's 5 bins, large: returns of 1e3-1e4, so that the
    return scale is far from its floor). The slow critic gets weights of its own, unlike the critic's."""
    import jax.numpy as jnp

    half = np.linspace(-20, 0, (bins - 1) // 2 + 1)
    symlog_bins = np.concatenate([half, -half[:-1][::-1]])
    slope = 2.0 if bins > 16 else 0.5  # few bins (debug: 5, the outer ones ±2e4 and ±5e8) need less
    bias = (-slope * np.abs(symlog_bins)).astype(np.float32)
    for head in ("rew", "val", "slowval"):
        out = "logits" if f"{head}/head/logits/kernel" in state else "pred"  # two-hot or MSE head
        kernel = state[f"{head}/head/{out}/kernel"]
        fan_in = kernel.shape[0]
        state[f"{head}/head/{out}/kernel"] = jnp.asarray(
            rng.normal(0, 1.0 / np.sqrt(fan_in), kernel.shape).astype(np.float32))
        if out == "logits":
            state[f"{head}/head/{out}/bias"] = jnp.asarray(bias)
    if "retnorm/lo/value" in state:  # absent with retnorm.impl none
        state["retnorm/lo/value"] = jnp.asarray(np.float32(-2.0))
        state["retnorm/hi/value"] = jnp.asarray(np.float32(3.0))
    return state


def capture(model, official_agent, act_kind):
    """Hooks that keep, per update, the official samples and intermediates: the official
    functions are called unchanged and their results kept. Returns ``(loss, restore)``: ``loss``
    is model.loss with ``outs["captured"]`` added; ``restore()`` takes the hooks out."""
    import jax.numpy as jnp

    captured = {}
    orig_imagine = model.dyn.imagine
    orig_imag_loss = official_agent.imag_loss
    orig_repl_loss = official_agent.repl_loss

    def imagine(carry, policy, length, training, single=False):
        if single:  # the official scan body calls imagine itself, one step at a time
            return orig_imagine(carry, policy, length, training, single)
        carry, feat, action = orig_imagine(carry, policy, length, training, single)
        if callable(policy):
            captured["img_stoch"] = feat["stoch"]
            captured["img_act"] = action["action"]
        return carry, feat, action

    def imag_loss(act, rew, con, policy, value, slowvalue, *args, **kwargs):
        losses, outs, mets = orig_imag_loss(act, rew, con, policy, value, slowvalue, *args, **kwargs)
        pol = policy["action"]
        pol = getattr(pol, "output", pol)  # continuous actions: Agg(Normal) summed over dims
        if act_kind == "discrete":
            captured["pol_logits"] = pol.logits
        else:
            captured["pol_mean"], captured["pol_std"] = pol.mean, pol.stddev
        captured["ret"] = outs["ret"]
        captured["img_rew"], captured["img_con"] = rew, con
        captured["img_val"] = value.pred()
        captured["bins"] = getattr(value, "bins", jnp.zeros(0))  # the critic's, as the compiled program has them
        return losses, outs, mets

    def repl_loss(*args, **kwargs):
        losses, outs, mets = orig_repl_loss(*args, **kwargs)
        captured["replay_ret"] = outs["ret"]
        return losses, outs, mets

    model.dyn.imagine = imagine
    official_agent.imag_loss = imag_loss
    official_agent.repl_loss = repl_loss

    def loss(*args, **kwargs):
        captured.clear()
        total, (carry, entries, outs, mets) = model.loss(*args, **kwargs)
        outs = dict(outs, captured=dict(captured))
        return total, (carry, entries, outs, mets)

    def restore():
        model.dyn.imagine = orig_imagine
        official_agent.imag_loss = orig_imag_loss
        official_agent.repl_loss = orig_repl_loss

    return loss, restore


def samples(outs, act_kind) -> dict:
    """The samples of one captured update, as the fixtures keep them: ``post``, ``prior``,
    ``act`` and, for continuous actions, ``act_noise`` (see the module docstring)."""
    cap = {a: np.asarray(b) for a, b in outs["captured"].items()}
    out = {"post": np.asarray(outs["repfeat"]["stoch"]).argmax(-1).astype(np.int8),
           "prior": cap["img_stoch"].argmax(-1).astype(np.int8)}
    if act_kind == "discrete":
        out["act"] = cap["img_act"].astype(np.int8)
    else:
        out["act"] = cap["img_act"]
        mean = cap["pol_mean"][:, :-1].astype(np.float64)
        std = cap["pol_std"][:, :-1].astype(np.float64)
        out["act_noise"] = (cap["img_act"].astype(np.float64) - mean) / std
    return out


def export(name, out_dir):
    import jax
    import jax.numpy as jnp
    import ninjax as nj
    import optax
    from dreamerv3 import agent as official_agent

    preset, obs_kind, act_kind, (B, T), flags, what = CASES[name]
    config, overrides = build_config(preset, flags, (B, T))
    obs_space, act_space = spaces(obs_kind, act_kind)
    agent_config = dict(
        **config.agent, logdir="/tmp/dreamer-bench-fixture", seed=0, jax=config.jax,
        batch_size=B, batch_length=T, replay_context=config.replay_context,
        report_length=config.report_length, replica=0, replicas=1)
    import elements
    import official_envs

    official_envs.quiet_agent_options()
    agent = official_agent.Agent(obs_space, act_space, elements.Config(agent_config))
    jax.config.update("jax_transfer_guard", "allow")  # the official setup disallows host transfers
    model = agent.model
    rssm = config.agent.dyn.rssm
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    data = make_batch(rng, obs_kind, act_kind, B, T, rssm.deter, rssm.stoch, rssm.classes)
    initial = name in INITIAL
    updates = 1 if initial else UPDATES
    if not initial:
        agent.params = perturb_initial_state(dict(agent.params), rng, config.agent.value.bins)
    compact = preset != "debug"
    generated = {}
    if compact:  # parameters exactly representable in float16, so that the file stores them in half
        agent.params = {k: (jnp.asarray(np.asarray(v).astype(np.float16).astype(np.float32))
                            if np.asarray(v).dtype == np.float32 else v) for k, v in agent.params.items()}
        # ... and every kernel drawn again from a seed of its name (see ``drawn_kernel``), so that
        # the file holds only its mean, std and shape; a slow-critic kernel that starts as a copy
        # of the critic's (all but the output layer, which perturb_initial_state made its own)
        # is drawn from the critic's seed, so it starts as the same copy
        official = {k: np.asarray(v) for k, v in agent.params.items()}
        for k in sorted(official, key=lambda k: k.startswith("slowval/")):  # the critic's first
            v = official[k]
            if k.split("/")[0] in MODULES + ("slowval",) and k.endswith("/kernel") and v.dtype == np.float32:
                twin = "val/" + k[len("slowval/"):]
                copy = k.startswith("slowval/") and twin in generated and np.array_equal(v, official[twin])
                seed_name = twin if copy else k
                mean, std = float(v.astype(np.float64).mean()), float(v.astype(np.float64).std())
                drawn = drawn_kernel(seed_name, mean, std, v.shape)
                generated[k] = [mean, std, list(v.shape), seed_name, zlib.crc32(drawn.tobytes())]
                agent.params[k] = jnp.asarray(drawn.astype(np.float32))
    state0 = {k: np.asarray(v) for k, v in agent.params.items()}
    param_names = sorted(k for k in state0 if k.split("/")[0] in MODULES)

    loss, restore = capture(model, official_agent, act_kind)

    grads_seen = {}
    transform = model.opt.opt

    def update(grads, state, params=None):
        grads_seen["grads"] = grads
        return transform.update(grads, state, params)

    model.opt.opt = optax.GradientTransformation(transform.init, update)

    def train_step(carry, batch):
        # The official Agent.train, less its replay outputs: context, one optimiser step, slow critic.
        carry, obs, prevact, _ = model._apply_replay_context(carry, batch)
        metrics, (carry, entries, outs, mets) = model.opt(loss, carry, obs, prevact, training=True, has_aux=True)
        metrics.update(mets)
        model.slowval.update()
        return metrics, outs, grads_seen["grads"]

    pure = jax.jit(nj.pure(train_step))
    init_carry = nj.pure(model.init_train)
    _, carry = init_carry(dict(agent.params), B, seed=jnp.array([0, 0], jnp.uint32))

    half = (lambda x: np.asarray(x).astype(np.float16)) if compact else (lambda x: np.asarray(x))

    def scaled(key, value):
        """Store value in float16 as value / max|value| (and the scale in float32 under
        ``scale/<key>``): rounding then stays within 5e-4 of the tensor's norm whatever its size."""
        value = np.asarray(value, np.float64)
        scale = float(np.abs(value).max()) or 1.0
        record[key] = (value / scale).astype(np.float16)
        record[f"scale/{key}"] = np.float32(scale)
    record = {f"param/{k}": half(state0[k]) for k in param_names if k not in generated}
    record.update({f"slow0/{k[len('slowval/'):]}": half(state0[k]) for k in state0
                   if k.startswith("slowval/") and k not in generated})
    if "retnorm/lo/value" in state0:
        record["retnorm0"] = np.array([state0["retnorm/lo/value"], state0["retnorm/hi/value"]], np.float32)
    record.update({f"batch/{k}": v for k, v in data.items()})
    state = dict(agent.params)
    jdata = {k: jnp.asarray(v) for k, v in data.items()}
    full = not compact
    snapshot = (1, updates) if full else (updates,)  # updates after which directions, moments, slow critic are kept
    forward_only = name in FORWARD_ONLY
    for k in range(1, updates + 1):
        state, (metrics, outs, grads) = pure(state, carry, jdata, seed=jnp.array([k, 7], jnp.uint32))
        cap = {a: np.asarray(b) for a, b in outs["captured"].items()}
        p = f"u{k}/"
        record.update({p + key: value for key, value in samples(outs, act_kind).items()})
        if full:
            record[p + "deter"] = np.asarray(outs["repfeat"]["deter"])
        for key in ("ret", "replay_ret", "img_rew", "img_con", "img_val"):
            if full or key in ("ret", "replay_ret"):
                record[p + key] = cap[key]
        for key, value in outs["losses"].items():
            record[p + f"loss/{key}"] = np.asarray(value)
        for key, value in metrics.items():
            value = np.asarray(value)
            if value.ndim == 0:
                record[p + f"metric/{key}"] = value
        grads = {a: np.asarray(b) for a, b in grads.items()}
        if initial and k == 1:
            record["bins"] = cap["bins"]
        if (full or k == 1) and not forward_only:
            for key in param_names:
                if compact:
                    scaled(p + f"grad/{key}", grads[key])
                else:
                    record[p + f"grad/{key}"] = grads[key]
        now = {a: np.asarray(b) for a, b in state.items()}
        if k in snapshot and not forward_only:
            for key in param_names:
                direction = (now[key].astype(np.float64) - state0[key]) / LR
                if compact:
                    scaled(p + f"dir/{key}", direction)
                else:
                    record[p + f"dir/{key}"] = direction
        if full and k in snapshot:
            for key in sorted(now):
                if key.startswith("opt/state/"):
                    record[p + key] = now[key]
        if "retnorm/lo/value" in now:
            record[p + "retnorm"] = np.array([now["retnorm/lo/value"], now["retnorm/hi/value"]], np.float32)
        for key in sorted(now):
            if key.startswith("slowval/") and k in snapshot and not forward_only:
                record[p + f"slow/{key[len('slowval/'):]}"] = now[key]  # float32: 0.98·slow moves little
    meta = {
        "case": name, "what": what, "preset": preset, "obs": obs_kind, "act": act_kind,
        "batch": [B, T], "updates": updates, "initial": initial, "lr": LR, "official_flags": overrides,
        "official_commit": "e3f02248693a79dc8b0ebd62c93683888ddaccfe",
        "state_keys": sorted(state0), "jax": jax.__version__,
        "rssm": dict(rssm), "vector_dim": VECTOR_DIM, "actions": ACTIONS, "drawn_kernels": generated,
        "vector_keys": {k: list(shape) for k, (shape, _) in PROPRIO.items()} if obs_kind == "proprio" else None,
    }
    record["meta"] = np.array(json.dumps(meta))
    save(record, out_dir, name)
    restore()


def main(argv=None):
    import official_envs

    official_envs.export_main(__doc__, CASES, export, argv, environ=official_envs.AGENT_ENVIRON)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    main()
