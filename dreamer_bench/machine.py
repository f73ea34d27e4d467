"""The machine a run or a benchmark used, in words.

A model name alone can hide what matters: these development VMs all call themselves "AMD EPYC"
whether or not the CPU has AVX-512 BF16, and the vector instructions change both the speed of a
training step and its floating-point rounding. So the CPU is named by its model, its vendor's
family and model numbers (Arm: implementer and part), and the instruction sets that CPU kernels
choose between. Plain Python (reads ``/proc/cpuinfo``, or asks ``sysctl`` on macOS), so that tools
running outside this package's environment can load it by path.
"""

from __future__ import annotations

import functools
import platform
import subprocess

# cpuinfo flag → how it is written; in the order a reader compares them
INSTRUCTION_SETS = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX-512 BF16"),
    ("avx512_fp16", "AVX-512 FP16"),
    ("amx_tile", "AMX"),
    ("asimd", "NEON"),  # 64-bit Arm ("Features")
    ("neon", "NEON"),  # 32-bit Arm
    ("sve", "SVE"),
    ("sve2", "SVE2"),
    ("bf16", "BF16"),  # Arm's BFloat16 instructions
    ("i8mm", "I8MM"),
)


def parse_cpuinfo(text: str) -> dict:
    """The fields of a ``/proc/cpuinfo`` text (key → value, as written), the first processor's
    where each processor has its own, and those written once after the processors (Arm's
    ``Hardware``, say)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
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
    if fields.get("CPU implementer"):  # Arm: who designed the core, and which core it is
        ids.append(f"implementer {fields['CPU implementer']}")
    if fields.get("CPU part"):
        ids.append(f"part {fields['CPU part']}")
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    isa = list(dict.fromkeys(label for flag, label in INSTRUCTION_SETS if flag in flags))
    details = "; ".join(part for part in (" ".join(ids), ", ".join(isa)) if part)
    return f"{name} ({details})" if details else name


def _sysctl(name: str) -> str:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.lru_cache(maxsize=1)
def cpu_description() -> str:
    """This machine's CPU in words (see :func:`describe_cpu`); on macOS the brand string."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        text = None
    fallback = platform.processor() or platform.machine()
    if text is None and platform.system() == "Darwin":
        fallback = _sysctl("machdep.cpu.brand_string") or fallback
    return describe_cpu(text, fallback)
