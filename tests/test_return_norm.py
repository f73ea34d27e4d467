"""return_norm: EMAs of the 5th/95th return percentiles, scale max(1, hi − lo)."""

import numpy as np
import pytest
import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.losses import ReturnNorm


def test_percentile_ema_matches_an_independent_computation():
    norm = ReturnNorm(make_config("debug"))
    rng = np.random.default_rng(0)
    low = high = 0.0
    for step in range(5):
        returns = rng.normal(50.0 * step, 300.0, size=(64, 15)).astype(np.float32)
        p5, p95 = np.percentile(returns, [5, 95])  # linear interpolation, like torch.quantile
        low = 0.99 * low + 0.01 * p5  # moved with this batch first, no debiasing
        high = 0.99 * high + 0.01 * p95
        scale = norm.update(torch.from_numpy(returns))
        assert norm.low.item() == pytest.approx(low, rel=1e-5)
        assert norm.high.item() == pytest.approx(high, rel=1e-5)
        assert scale.item() == pytest.approx(max(1.0, high - low), rel=1e-5)


def test_scale_never_goes_below_one():
    norm = ReturnNorm(make_config("debug"))
    assert norm.update(torch.linspace(0, 10, 100)).item() == 1.0  # 0.01 · 9 < 1


def test_off_scale_is_one_and_keeps_no_statistics():
    norm = ReturnNorm(make_config("debug", off=["return_norm"]))
    assert norm.update(torch.linspace(-1e4, 1e4, 1000)).item() == 1.0
    assert norm.low.item() == 0.0 and norm.high.item() == 0.0


def test_percentiles_are_torch_quantile_exactly():
    """The return statistics' percentiles (written with ops vmap can batch) equal torch.quantile's."""
    from dreamer_bench.agent.losses import percentiles

    g = torch.Generator().manual_seed(0)
    q = torch.tensor([0.05, 0.95])
    for n in (1, 2, 3, 7, 100, 15360):
        for _ in range(5):
            x = torch.randn(n, generator=g) * 10 ** float(torch.randint(-3, 4, (), generator=g))
            assert torch.equal(percentiles(x, q), torch.quantile(x, q)), n
