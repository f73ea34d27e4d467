"""twohot: symexp-spaced bins, two-hot targets interpolated in raw space, and the expectation summed
in mirrored pairs as the official agent's compiled program sums them."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.heads import MSEDist, TwoHotDist, ValueHead, twohot_bins, twohot_encode, twohot_mean


def reference_bins(n):
    return np.array([math.copysign(math.expm1(abs(v)), v) for v in np.linspace(-20, 20, n)])


def test_bins_are_symexp_of_a_symmetric_grid_with_an_exact_zero():
    bins = twohot_bins(255)
    assert bins.shape == (255,)
    assert bins[127].item() == 0.0
    assert torch.equal(bins, -bins.flip(0))  # exactly antisymmetric
    np.testing.assert_allclose(bins.numpy(), reference_bins(255), rtol=1e-6)
    assert torch.all(bins[1:] > bins[:-1])


def test_weights_for_a_value_on_a_bin():
    bins = twohot_bins(255)
    for k in (0, 100, 127, 200, 254):
        w = twohot_encode(bins[k:k + 1], bins)[0]
        assert w[k].item() == pytest.approx(1.0)
        assert w.sum().item() == pytest.approx(1.0)
        assert (w > 0).sum().item() == 1


def test_weights_between_bins_interpolate_in_raw_space():
    bins = twohot_bins(5)  # [-symexp(20), -symexp(10), 0, symexp(10), symexp(20)]
    hi = math.expm1(10.0)
    y = torch.tensor([0.25 * hi, -0.5 * hi, hi + 0.75 * (math.expm1(20.0) - hi)])
    w = twohot_encode(y, bins)
    expected = np.zeros((3, 5))
    expected[0, 2], expected[0, 3] = 0.75, 0.25
    expected[1, 1], expected[1, 2] = 0.5, 0.5
    expected[2, 3], expected[2, 4] = 0.25, 0.75
    np.testing.assert_allclose(w.numpy(), expected, atol=1e-5)
    # the weighted mean of the two bins recovers the value
    np.testing.assert_allclose((w * bins).sum(-1).numpy(), y.numpy(), rtol=1e-5)


def test_weights_beyond_the_range_go_to_the_end_bin():
    bins = twohot_bins(255)
    w = twohot_encode(torch.tensor([1e12, -1e12]), bins)
    assert w[0, -1].item() == 1.0 and w[0].sum().item() == 1.0
    assert w[1, 0].item() == 1.0 and w[1].sum().item() == 1.0


def fused_pairs(probs: np.ndarray, bins: np.ndarray) -> float:
    """The official compiled expectation, worked out in exact rational arithmetic: per mirrored
    pair, the negative bin's product exactly plus the positive bin's product rounded to float32,
    the sum rounded once to float32; the pairs then summed."""
    m = len(bins) // 2
    total = 0.0
    for i in range(m):
        neg, pos = m - 1 - i, m + 1 + i
        rounded = Fraction(float(np.float32(probs[pos]) * np.float32(bins[pos])))  # float32 product
        exact = Fraction(float(probs[neg])) * Fraction(float(bins[neg]))
        total += float(np.float32(float(exact + rounded)))
    return total


def test_zero_logits_predict_what_the_official_fused_pairs_leave():
    """Uniform probabilities: every pair cancels in exact arithmetic, but a fused multiply-add keeps
    the rounding error of the positive product, so the prediction is the same small non-zero value
    for every state (−0.1645 with the official bins, tests/test_official_equivalence.py)."""
    bins = twohot_bins(255)
    ours = twohot_mean(torch.zeros(7, 255), bins)
    probs = torch.softmax(torch.zeros(255), -1).numpy()
    expected = fused_pairs(probs, bins.numpy())
    assert 0.01 < abs(expected) < 1.0
    assert torch.all(ours == ours[0])
    assert ours[0].item() == pytest.approx(expected, rel=1e-6)
    assert twohot_mean(torch.zeros(3, 5), twohot_bins(5))[0].item() == pytest.approx(
        fused_pairs(torch.softmax(torch.zeros(5), -1).numpy(), twohot_bins(5).numpy()), rel=1e-6)


def test_fused_pairs_early_in_training_differ_from_exact_arithmetic_by_their_rounding():
    """A head early in training: the loss pushes mirrored tail bins down alike (their logits stay
    equal) while the centre bins near the rewards move. The prediction is the fused-pair sum
    (worked out independently above); it differs from the exact expectation by up to the rounding
    of the positive products, which here is of the size of the prediction itself."""
    bins = twohot_bins(255)
    gen = torch.Generator().manual_seed(3)
    logits = -0.01 * (torch.arange(255) - 127).abs().float().repeat(5, 1)  # mirrored tails
    logits[:, 120:135] += 0.3 * torch.randn(5, 15, generator=gen)  # the centre, near the targets
    ours = twohot_mean(logits, bins)
    apart = 0
    for row in range(5):
        probs = torch.softmax(logits[row], -1)
        assert ours[row].item() == pytest.approx(fused_pairs(probs.numpy(), bins.numpy()), rel=1e-5, abs=1e-6)
        exact = float((probs.double() * bins.double()).sum())
        bound = 2.0**-24 * float((probs.double() * bins.double()).abs().sum())
        assert abs(ours[row].item() - exact) <= bound + 1e-6 * abs(exact)
        apart += abs(ours[row].item() - exact) > 0.1 * abs(exact)
    assert apart >= 3  # the rounding matters here: it is what the official agent's early values carry


def test_prediction_is_the_expectation_over_bins():
    bins = twohot_bins(255)
    logits = torch.randn(4, 255, dtype=torch.float64)
    probs = torch.softmax(logits, -1)
    expected = (probs * bins.double()).sum(-1)
    torch.testing.assert_close(twohot_mean(logits.float(), bins).double(), expected, rtol=1e-4, atol=1e-3)


def test_loss_is_cross_entropy_against_two_hot_target():
    cfg = make_config("debug", overrides={"units": 4})
    head = ValueHead(3, 1, cfg)
    out = torch.randn(2, 5)
    y = torch.tensor([3.0, -50.0])
    target = twohot_encode(y, head.bins)
    expected = -(target * torch.log_softmax(out, -1)).sum(-1)
    torch.testing.assert_close(TwoHotDist(out, head.bins).loss(y), expected)
    assert isinstance(head(torch.zeros(2, 3)), TwoHotDist)


def test_off_is_one_scalar_trained_with_mse():
    cfg = make_config("debug", off=["twohot"])
    head = ValueHead(3, 1, cfg)
    assert head.out.out_features == 1
    out = MSEDist(torch.tensor([2.0, -1.0]))
    y = torch.tensor([5.0, 1.0])
    torch.testing.assert_close(out.loss(y), torch.tensor([9.0, 4.0]))
    torch.testing.assert_close(out.pred(), torch.tensor([2.0, -1.0]))
    pred = head(torch.randn(2, 3))
    assert isinstance(pred, MSEDist) and pred.pred().shape == (2,)


def outer_pairs_that_differ(head: ValueHead, outer: int = 100) -> int:
    """Mirrored bins beyond the first ``outer`` on each side whose weights or bias are not
    bitwise equal (no target reaches them, so nothing should tell them apart)."""
    w, b = head.out.weight.detach(), head.out.bias.detach()
    m = w.shape[0] // 2
    neg_w, pos_w = w[:m].flip(0)[outer:], w[m + 1:][outer:]
    neg_b, pos_b = b[:m].flip(0)[outer:], b[m + 1:][outer:]
    return int(((neg_w != pos_w).any(1) | (neg_b != pos_b)).sum())


def train_head(seed: int, steps: int = 30) -> tuple[ValueHead, int]:
    """A zero-initialised reward head (64 features, as size1m's) trained by our optimiser on
    batches of 16×64 targets in [0, 0.3], as a world model's reward head is early on: only bins
    near 0 get a target. Returns the head and the most outer pairs that differed after a step."""
    from dreamer_bench.agent.optim import Optimizer

    cfg = make_config("size1m", overrides=dict(warmup=0))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the hidden layer's initial weights
    head = ValueHead(64, 1, cfg)
    opt = Optimizer(head.parameters(), cfg)
    most = 0
    for _ in range(steps):
        feat = torch.randn(16 * 64, 64, generator=gen)
        target = torch.rand(16 * 64, generator=gen) * 0.3
        head.zero_grad()
        head(feat).loss(target).mean().backward()
        opt.step()
        most = max(most, outer_pairs_that_differ(head))
    return head, most


def test_mirrored_bins_no_target_reaches_stay_bitwise_equal():
    # The zero-initialised head's outer bins weigh up to ±4.85e8: their probabilities cancel in
    # the expectation only while a bin and its mirror stay bitwise alike, as they do in the
    # official agent (tools/official/first_updates.py official --keep: every outer pair equal).
    for seed in range(3):
        head, most = train_head(seed)
        assert most == 0
        assert outer_pairs_that_differ(head, outer=0) > 0  # the bins near the targets did learn apart
        x = torch.randn(4096, 64)
        assert abs(head(x).pred()).max().item() < 1.0  # no outlier on unseen features


def test_a_mirror_summed_in_another_order_parts(monkeypatch):
    # The check above is not vacuous: mirrored_linear, except that the positive half takes the
    # batch's rows in reverse order, so that its bias and weight gradients are the same sums as
    # the negative half's added in another order (what a plain nn.Linear's CPU kernel does to the
    # last columns on some CPUs); a few units in the last place, and outer pairs part.
    from dreamer_bench.agent import heads

    mirrored = heads.mirrored_linear

    def reversed_positive_half(x, weight, bias):  # the negative half and centre as they are
        m = weight.shape[0] // 2
        flat = x.reshape(-1, x.shape[-1])
        ahead = mirrored(flat, weight, bias)
        behind = mirrored(flat.flip(0), weight, bias).flip(0)  # the same rows, summed backwards
        out = torch.cat([ahead[:, :m + 1], behind[:, m + 1:]], -1)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    monkeypatch.setattr(heads, "mirrored_linear", reversed_positive_half)
    for seed in range(3):
        assert train_head(seed)[1] > 0
