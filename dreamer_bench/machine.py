"""The machine a run or a benchmark used, in words.

A model name alone can hide what matters: these development VMs all call themselves "AMD EPYC"
whether or not the CPU has AVX-512 BF16, and the vector instructions change both the speed of a
training step and its floating-point rounding. So the CPU is named by its model, its vendor's
family and model numbers, and the instruction sets that torch's CPU kernels choose between.
Plain Python (reads ``/proc/cpuinfo`` where there is one), so that tools running outside this
package's environment can load it by path.
"""

from __future__ import annotations

import platform

# cpuinfo flag → how it is written; in the order a reader compares them
INSTRUCTION_SETS = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX-512 BF16"),
    ("avx512_fp16", "AVX-512 FP16"),
    ("amx_tile", "AMX"),
    ("asimd", "NEON"),  # 64-bit Arm ("Features")
    ("sve", "SVE"),
)


def parse_cpuinfo(text: str) -> dict:
    """The first processor's fields of a ``/proc/cpuinfo`` text (key → value, as written)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the end of the first processor's block
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def describe_cpu(text: str | None, fallback: str = "") -> str:
    """``AMD EPYC (AuthenticAMD family 25 model 17; AVX2, AVX-512, AVX-512 BF16)`` from a cpuinfo
    text; ``fallback`` (or "unknown CPU") where the text names no model."""
    fields = parse_cpuinfo(text or "")
    name = fields.get("model name") or fields.get("Hardware") or fallback or "unknown CPU"
    ids = []
    if fields.get("vendor_id"):
        ids.append(fields["vendor_id"])
    if fields.get("cpu family"):
        ids.append(f"family {fields['cpu family']}")
    if fields.get("model", "").isdigit():
        ids.append(f"model {fields['model']}")
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    isa = [label for flag, label in INSTRUCTION_SETS if flag in flags]
    details = "; ".join(part for part in (" ".join(ids), ", ".join(isa)) if part)
    return f"{name} ({details})" if details else name


def cpu_description() -> str:
    """This machine's CPU in words (see :func:`describe_cpu`)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        text = None
    return describe_cpu(text, platform.processor() or platform.machine())
