"""The machine in words (dreamer_bench/machine.py): the CPU's model, family and instruction sets,
which the model name alone does not tell apart on these VMs."""

import re
from pathlib import Path

import pytest

from dreamer_bench.machine import cpu_description, describe_cpu

# first processor blocks as /proc/cpuinfo writes them (flags shortened to a few of each machine's)
AMD_BF16 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_bf16 vaes

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: a second processor is never read
"""
AMD_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma sha_ni
"""
XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes sve bf16 i8mm
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""
RASPBERRY = """processor\t: 0
model name\t: ARMv7 Processor rev 4 (v7l)
Features\t: half thumb fastmult vfp edsp neon vfpv3

processor\t: 1
model name\t: ARMv7 Processor rev 4 (v7l)

Hardware\t: BCM2835
Revision\t: a02082
"""
RASPBERRY_NO_MODEL = RASPBERRY.replace("model name\t: ARMv7 Processor rev 4 (v7l)\n", "")
POWER = """processor\t: 0
cpu\t\t: POWER9 (raw), altivec supported
"""


@pytest.mark.parametrize("text, expected", [
    (AMD_BF16, "AMD EPYC (AuthenticAMD family 25 model 17; AVX2, AVX-512, AVX-512 BF16)"),
    (AMD_AVX2, "AMD EPYC (AuthenticAMD family 23 model 49; AVX2)"),
    (XEON_AMX, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (GenuineIntel family 6 model 143; "
               "AVX2, AVX-512, AVX-512 BF16, AVX-512 FP16, AMX)"),
    (ARM, "aarch64 (implementer 0x41 part 0xd40; NEON, SVE, BF16, I8MM)"),  # no model name: the fallback
    (RASPBERRY, "ARMv7 Processor rev 4 (v7l) (NEON)"),
    (RASPBERRY_NO_MODEL, "BCM2835 (NEON)"),  # Hardware, written once after the processors
    (POWER, "aarch64"),  # no fields this module reads: the fallback alone
    ("", "aarch64"),
    (None, "aarch64"),
])
def test_the_cpu_is_named_by_model_family_and_instruction_sets(text, expected):
    assert describe_cpu(text, fallback="aarch64") == expected


def test_two_epycs_that_share_a_model_name_read_apart():
    assert describe_cpu(AMD_BF16) != describe_cpu(AMD_AVX2)
    assert describe_cpu("") == "unknown CPU"


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="no /proc/cpuinfo")
def test_this_machines_cpu_as_its_cpuinfo_says():
    text = Path("/proc/cpuinfo").read_text()
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    family = re.search(r"^cpu family\s*:\s*(\d+)$", text, re.M)
    found = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    flags = set(found.group(1).split()) if found else set()
    words = cpu_description()
    if name:
        assert words.startswith(name.group(1).strip())
    if family:
        assert f"family {family.group(1)}" in words
    assert ("AVX-512 BF16" in words) == ("avx512_bf16" in flags)
    assert ("AVX2" in words) == ("avx2" in flags)
