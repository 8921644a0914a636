"""`reelbot bench analyze`: analysis speed (x real time) and hard-cut accuracy on generated footage.

The footage is real photographs filmed by a moving virtual camera (`synth`), with hard cuts and
0.5 s dissolves at known frames, encoded like phone video (H.264, 2 s GOP).
"""

from __future__ import annotations

import logging
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from pipeline.bench.synth import bench_scenes, match_cuts, write_clip
from pipeline.footage.analyze import analyze
from pipeline.footage.understand import warm
from pipeline.media import probe

log = logging.getLogger(__name__)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class BenchResult:
    x_realtime: float
    recall: float
    precision: float
    details: dict[str, Any]


def run_bench(
    seconds: float, size: tuple[int, int], fps: int = 30, workdir: str | None = None
) -> BenchResult:
    """Generate footage, analyse it without cache or transcription, and score the cuts."""
    with tempfile.TemporaryDirectory(prefix="reelbot-bench-") as tmp:
        folder = workdir or tmp
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"bench_{size[0]}x{size[1]}_{int(seconds)}s.mp4")
        t0 = time.perf_counter()
        truth = write_clip(path, bench_scenes(seconds, fps), size, fps)
        gen = time.perf_counter() - t0
        info = probe(path)
        # The models load once per process (the bot pays it at its first job): not timed.
        t0 = time.perf_counter()
        warm()
        load = time.perf_counter() - t0
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        analysis = analyze([info], use_cache=False)
        took = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    f = analysis.files[0]
    found = [round(t * fps) for t in f.cuts]
    tp, _fp = match_cuts(found, truth.cuts, tolerance=2)
    recall = tp / len(truth.cuts) if truth.cuts else 1.0
    precision = tp / len(found) if found else 1.0
    dissolve_mid = [round((a + b) / 2) for a, b in truth.dissolves]
    d_tp, d_fp = match_cuts([round(t * fps) for t in f.dissolves], dissolve_mid, tolerance=fps)
    details = {
        "footage_seconds": info.duration,
        "size": f"{size[0]}x{size[1]}",
        "fps": fps,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "generate_seconds": round(gen, 2),
        "analyze_seconds": round(took, 2),
        "model_load_seconds": round(load, 2),
        # CPU time of all threads, and the machine's load: wall time on a shared machine is
        # noisy, and these show how much of it was this analysis.
        "analyze_cpu_seconds": round(cpu, 2),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "true_cuts": list(truth.cuts),
        "found_cuts": found,
        "true_dissolves": [list(d) for d in truth.dissolves],
        "found_dissolves": [round(t * fps) for t in f.dissolves],
        "dissolves_found_within_1s": d_tp,
        "dissolve_false_alarms": d_fp,
        "moments": len(analysis.shots),
    }
    return BenchResult(info.duration / took if took > 0 else 0.0, recall, precision, details)
