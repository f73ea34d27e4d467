"""The fixtures' file layout: every numeric array of a case in one flat array per dtype, and the
size1m cases' initial kernels drawn from a seed rather than stored (``drawn_kernel``).

A case has about a thousand arrays (each parameter's value, gradient, direction, moments, ...).
Stored one per .npz entry, the zip and .npy headers (~250 bytes each) outweighed the data of the
debug cases. ``pack`` concatenates the arrays of each dtype in a fixed order into ``packed/<dtype>``
and lists them in ``packed/index`` (JSON: ``[[key, dtype, shape], ...]`` in that order); string
arrays (``meta``) stay as they are. tests/test_official_equivalence.py reads it back.

    python tools/official/fixture_format.py tests/fixtures/official/*.npz

rewrites existing files in this layout (lossless: each file is read back and compared bit for bit
before it replaces the original; files already packed are left alone).
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np


def pack(record: dict) -> dict:
    out, index, flats = {}, [], {}
    for key in sorted(record):
        value = np.asarray(record[key])
        if value.dtype.kind in "US":
            out[key] = value
            continue
        index.append([key, value.dtype.str, list(value.shape)])
        flats.setdefault(value.dtype.str, []).append(value.reshape(-1))
    for dtype, parts in flats.items():
        out[f"packed/{dtype}"] = np.concatenate(parts)
    out["packed/index"] = np.array(json.dumps(index))
    return out


def save(record: dict, out_dir: Path, name: str) -> Path:
    """Write ``record`` packed (``pack``) to OUT_DIR/NAME.npz, compressed, whole or not at all (a
    temporary file renamed over it); report its size on stderr."""
    import sys

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path, tmp = out_dir / f"{name}.npz", out_dir / f"{name}.tmp.npz"
    np.savez_compressed(tmp, **pack(record))
    tmp.replace(path)
    print(f"{name}: {path.stat().st_size / 1e6:.2f} MB", file=sys.stderr)
    return path


def unpack(stored: dict) -> dict:
    """The arrays by name, from what ``pack`` stored (read with ``np.load``)."""
    data = {k: v for k, v in stored.items() if not k.startswith("packed/")}
    offsets = {}
    for key, dtype, shape in json.loads(str(stored["packed/index"])):
        start = offsets.get(dtype, 0)
        size = int(np.prod(shape, dtype=np.int64))
        data[key] = stored[f"packed/{dtype}"][start:start + size].reshape(shape)
        offsets[dtype] = start + size
    left = [d for d in offsets if offsets[d] != stored[f"packed/{d}"].size]
    assert not left and len(offsets) == sum(k.startswith("packed/") for k in stored) - 1, "packed arrays left over"
    return data


def drawn_kernel(seed_name: str, mean: float, std: float, shape) -> np.ndarray:
    """A size1m case's initial kernel, which its file does not store: mean + std·N(0, 1) in float64
    from numpy's legacy generator (a stream numpy keeps fixed across versions) seeded by the CRC-32
    of ``seed_name``, rounded to float16. The file keeps, per kernel, in meta ``drawn_kernels``:
    [mean, std, shape, seed name, CRC-32 of these float16 bytes] (tools/official/export_fixtures.py;
    the mean and std are those of the official initial kernel)."""
    z = np.random.RandomState(zlib.crc32(seed_name.encode())).standard_normal(shape)
    return (mean + std * z).astype(np.float16)


def repack(path: Path) -> None:
    with np.load(path) as f:
        original = {k: f[k] for k in f.files}
    if "packed/index" in original:
        print(f"{path}: already packed")
        return
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **pack(original))
    with np.load(tmp) as f:
        back = unpack({k: f[k] for k in f.files})
    same = back.keys() == original.keys() and all(
        back[k].dtype == original[k].dtype and back[k].shape == original[k].shape
        and back[k].tobytes() == original[k].tobytes() for k in original)
    if not same:
        tmp.unlink()
        sys.exit(f"error: {path} did not read back identically; left unchanged")
    before = path.stat().st_size
    tmp.replace(path)
    print(f"{path}: {before / 1e6:.2f} MB -> {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tools/official/fixture_format.py FIXTURE.npz ...")
    for name in sys.argv[1:]:
        repack(Path(name))
