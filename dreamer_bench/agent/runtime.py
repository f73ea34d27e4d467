"""Process-level settings that make the CPU training step faster. Applications call these once."""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_tuned = False


def tune_cpu_allocator() -> bool:
    """Keep large freed blocks in glibc's heap instead of returning them to the OS.

    By default glibc serves blocks over 128 KiB with mmap and unmaps them on free, so every
    training update page-faults its large activations (several MB each) back in; measured here
    this costs about 8% of a size1m update. Raising the mmap threshold to its maximum (32 MiB) and
    the trim threshold to 1 GiB keeps that memory mapped between updates. One arena for all
    threads: glibc gives each thread that allocates its own arena, and a packed group
    (runner/pack.py) trains in several threads; with an arena each, a size1m group of 3 seeds
    peaked at 5.4 GB and page-faulted 2.5× as often as with one (1.98 GB; `tools/pack_threads.py
    --arenas 8` against no flag, AMD EPYC, 2026-12-04). Call it before starting threads. No
    effect off glibc.
    """
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return _tuned
    try:
        libc = ctypes.CDLL("libc.so.6")
        _tuned = (bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30))
                  and bool(libc.mallopt(_M_ARENA_MAX, 1)))
    except (OSError, AttributeError):
        _tuned = False
    return _tuned


def native_bf16(device: str) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware: on CUDA, what the GPU reports; on a
    CPU, whether oneDNN finds bf16 instructions (AVX-512 BF16 or AMX). Without them PyTorch falls
    back to scalar bf16 kernels: on an AVX2-only AMD EPYC, a (1024×640)·(640×64) product took
    10.1 ms in bf16 against 1.25 ms in fp32, one thread."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
