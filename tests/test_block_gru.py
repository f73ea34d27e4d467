"""block_gru: the block-diagonal core, its dense one-block equivalent and its parameter count."""

import torch
import torch.nn.functional as F

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.nets import BlockLinear
from dreamer_bench.agent.rssm import RSSM, BlockGRU


def rms(x, scale, eps=1e-4):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * scale


def dense_gru(core, deter, stoch, action):
    """A dense GRU cell written out from the core's weights (valid for one block)."""
    def layer(dense, x):
        return F.silu(rms(x @ dense.linear.weight.T + dense.linear.bias, dense.norm.scale))

    x = torch.cat([layer(core.in_deter, deter), layer(core.in_stoch, stoch), layer(core.in_action, action), deter], -1)
    w1 = core.hidden.weight[0]  # (in, D)
    h = F.silu(rms(x @ w1 + core.hidden.bias, core.norm.scale))
    gates = h @ core.gates.weight[0] + core.gates.bias
    d = deter.shape[-1]
    r, c, u = gates[:, :d], gates[:, d:2 * d], gates[:, 2 * d:]
    r = torch.sigmoid(r)
    c = torch.tanh(r * c)
    u = torch.sigmoid(u - 1)
    return u * c + (1 - u) * deter


def test_one_block_equals_a_dense_gru():
    torch.manual_seed(0)
    core = BlockGRU(deter=16, stoch=12, act_dim=3, hidden=5, blocks=1)
    deter, stoch, action = torch.randn(4, 16), torch.randn(4, 12), torch.randn(4, 3)
    torch.testing.assert_close(core(deter, stoch, action), dense_gru(core, deter, stoch, action))


def test_block_linear_is_a_dense_layer_with_block_diagonal_weights():
    torch.manual_seed(0)
    layer = BlockLinear(12, 8, blocks=4)
    dense = torch.block_diag(*layer.weight.unbind(0))  # (12, 8)
    x = torch.randn(5, 12)
    torch.testing.assert_close(layer(x), x @ dense + layer.bias)


def block_gru(core, deter, stoch, action, slice_of=lambda g, G: g):
    """The block-diagonal core written out block by block from its weights: block g takes the
    three input layers' outputs and deter's slice ``slice_of(g)`` (its own: g), its own hidden
    weights; RMSNorm runs over all blocks' outputs together; block g's gates (reset, candidate,
    update) come from its own part of the normalised hidden state and update its own slice."""
    def layer(dense, x):
        return F.silu(rms(x @ dense.linear.weight.T + dense.linear.bias, dense.norm.scale))

    G = core.blocks
    d = deter.shape[-1] // G
    x = torch.cat([layer(core.in_deter, deter), layer(core.in_stoch, stoch), layer(core.in_action, action)], -1)
    pre = []
    for g in range(G):
        own = deter[:, slice_of(g, G) * d:(slice_of(g, G) + 1) * d]
        pre.append(torch.cat([x, own], -1) @ core.hidden.weight[g] + core.hidden.bias[g * d:(g + 1) * d])
    h = F.silu(rms(torch.cat(pre, -1), core.norm.scale))
    out = []
    for g in range(G):
        gates = h[:, g * d:(g + 1) * d] @ core.gates.weight[g] + core.gates.bias[g * 3 * d:(g + 1) * 3 * d]
        r, c, u = gates[:, :d], gates[:, d:2 * d], gates[:, 2 * d:]
        c = torch.tanh(torch.sigmoid(r) * c)
        u = torch.sigmoid(u - 1)
        out.append(u * c + (1 - u) * deter[:, g * d:(g + 1) * d])
    return torch.cat(out, -1)


def test_four_blocks_equal_the_core_written_out_block_by_block():
    torch.manual_seed(0)
    core = BlockGRU(deter=16, stoch=12, act_dim=3, hidden=5, blocks=4)
    with torch.no_grad():  # non-zero biases, so that each block's part of them is checked too
        for bias in (core.hidden.bias, core.gates.bias):
            bias.normal_()
    deter, stoch, action = torch.randn(6, 16), torch.randn(6, 12), torch.randn(6, 3)
    torch.testing.assert_close(core(deter, stoch, action), block_gru(core, deter, stoch, action))
    # the comparison tells the blocks apart: each block given its mirror's slice differs
    mirrored = block_gru(core, deter, stoch, action, slice_of=lambda g, G: G - 1 - g)
    assert (core(deter, stoch, action) - mirrored).abs().max() > 1e-2


def test_blocks_only_see_their_own_slice_of_deter():
    torch.manual_seed(0)
    core = BlockGRU(deter=16, stoch=12, act_dim=3, hidden=5, blocks=4)
    x = torch.randn(1, 16, requires_grad=True)
    pre = core.hidden(torch.cat([torch.zeros(1, 4, 15), x.reshape(1, 4, 4)], -1).reshape(1, -1))
    (grad,) = torch.autograd.grad(pre[0, :4].sum(), x)  # the first block's pre-activation
    assert grad[0, 4:].abs().sum() == 0 and grad[0, :4].abs().sum() > 0


def core_params(deter, hidden, stoch, act, blocks):
    inputs = sum(n * hidden + hidden + hidden for n in (deter, stoch, act))  # Linear + bias + norm
    per_block_in = 3 * hidden + deter // blocks
    first = blocks * per_block_in * (deter // blocks) + deter + deter  # block weights + bias + norm
    gates = blocks * (deter // blocks) * (3 * deter // blocks) + 3 * deter
    return inputs + first + gates


def test_parameter_count_on_and_off():
    cfg = make_config("size1m")
    for off, blocks in (((), 8), (("block_gru",), 1)):
        rssm = RSSM(100, 6, make_config("size1m", off=off))
        got = sum(p.numel() for p in rssm.core.parameters())
        assert got == core_params(cfg.deter, cfg.hidden, cfg.stoch, 6, blocks)
    on = sum(p.numel() for p in RSSM(100, 6, cfg).core.parameters())
    off = sum(p.numel() for p in RSSM(100, 6, make_config("size1m", off=["block_gru"])).core.parameters())
    assert off > 4 * on  # the dense core is several-fold larger (4.4× at size1m)
