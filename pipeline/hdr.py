"""HDR video (HLG, PQ) to SDR BT.709: one 3D LUT per transfer, made once by zimg, used everywhere.

Phones record HLG by default (iPhone 12 and later, many Androids). Shown as if it were SDR it
looks grey and flat. The conversion is zimg's (ffmpeg's `zscale`): BT.2020 R'G'B' -> linear
light (100 nits as SDR white) -> BT.709 primaries -> `tonemap=mobius` (leaves most of the SDR
range alone, rolls off the highlights) -> BT.709 transfer. Running that chain per pixel costs
~18 ms per 1080x1920 frame; it is instead sampled once on a 64^3 grid (a Hald CLUT pushed
through the same chain) and cached as a `.cube` file. The renderer applies the cube with
ffmpeg's `lut3d` (tetrahedral), ~3x cheaper than the chain, and analysis, contact sheet and
storyboard frames use the same table in numpy (trilinear), so everything looks alike.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from pipeline.ffmpeg import run_ffmpeg
from pipeline.jsonfiles import atomic_path
from pipeline.settings import settings

LEVEL = 8  # Hald level: LEVEL**2 = 64 steps per channel, a LEVEL**3 = 512 px square image
SIZE = LEVEL * LEVEL
TRC = {"hlg": "arib-std-b67", "pq": "smpte2084"}
MOBIUS = 0.5  # linear light where mobius starts to roll off (ffmpeg's default 0.3 dims skin tones)
_CHAIN = (
    "format=gbrpf32le,setparams=color_trc={trc}:color_primaries=bt2020:colorspace=gbr:range=pc,"
    "zscale=t=linear:npl=100,zscale=p=bt709,"
    "tonemap=tonemap=mobius:param={param}:desat=0,"
    "zscale=t=bt709,format=rgb48le"
)
_lock = threading.Lock()


def _cache_dir() -> Path:
    return settings().cache_dir / "hdr"


def cube_file(transfer: str) -> str:
    """The `.cube` LUT (for ffmpeg's lut3d) taking `transfer` BT.2020 R'G'B' to SDR BT.709."""
    chain = _CHAIN.format(trc=TRC[transfer], param=MOBIUS)
    tag = hashlib.sha256(chain.encode()).hexdigest()[:12]  # a changed chain is a new file
    path = _cache_dir() / f"{transfer}-{SIZE}-{tag}.cube"
    with _lock:
        if not path.is_file():
            table = _sample_chain(transfer)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, suffix=".cube") as tmp, open(tmp, "w") as fh:
                fh.write(f'TITLE "reelbot {transfer} to SDR BT.709"\nLUT_3D_SIZE {SIZE}\n')
                # .cube order: red changes fastest, then green, then blue (as in a Hald image).
                np.savetxt(fh, table.reshape(-1, 3), fmt="%.6f")
    return str(path)


def _sample_chain(transfer: str) -> np.ndarray:
    """The chain's output for every point of the grid: float32 [blue][green][red][rgb] in 0..1."""
    with tempfile.TemporaryDirectory(prefix="reelbot-hdr-") as tmp:
        raw = os.path.join(tmp, "hald.rgb48")
        run_ffmpeg(["-v", "error", "-f", "lavfi", "-i", f"haldclutsrc=level={LEVEL}",
                    "-frames:v", "1", "-vf", _CHAIN.format(trc=TRC[transfer], param=MOBIUS),
                    "-f", "rawvideo", raw], what="building the HDR table")  # fmt: skip
        data = np.fromfile(raw, dtype="<u2")
    return (data.reshape(SIZE, SIZE, SIZE, 3) / 65535.0).astype(np.float32)


@functools.cache
def table(transfer: str) -> np.ndarray:
    """The LUT as an array (read from the cube file, so both paths use the same numbers)."""
    values = np.loadtxt(cube_file(transfer), skiprows=2, dtype=np.float32)
    return values.reshape(SIZE, SIZE, SIZE, 3)


def to_sdr(
    frame: av.VideoFrame, width: int, height: int, transfer: str, interpolation: str = "BILINEAR"
) -> np.ndarray:
    """An HDR frame scaled to width x height and tone-mapped: BGR uint8, like `to_ndarray`."""
    rgb = frame.reformat(
        width=width,
        height=height,
        format="rgb48le",
        src_colorspace=Colorspace.BT2020,
        src_color_range=ColorRange.MPEG,
        interpolation=interpolation,
    ).to_ndarray()
    out = apply(rgb.astype(np.float32) / 65535.0, table(transfer))
    return np.ascontiguousarray((out[..., ::-1] * 255.0 + 0.5).astype(np.uint8))


def apply(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Trilinear lookup of H x W x 3 RGB in 0..1 through a [b][g][r] LUT; RGB in 0..1 out."""
    n = lut.shape[0] - 1
    pos = np.clip(rgb, 0.0, 1.0) * n
    lo = np.minimum(pos.astype(np.int32), n - 1)
    f = pos - lo
    r0, g0, b0 = lo[..., 0], lo[..., 1], lo[..., 2]
    fr, fg, fb = f[..., 0:1], f[..., 1:2], f[..., 2:3]
    out = np.zeros(rgb.shape, np.float32)
    for db, wb in ((0, 1 - fb), (1, fb)):
        for dg, wg in ((0, 1 - fg), (1, fg)):
            for dr, wr in ((0, 1 - fr), (1, fr)):
                out += wb * wg * wr * lut[b0 + db, g0 + dg, r0 + dr]
    return np.clip(out, 0.0, 1.0)
