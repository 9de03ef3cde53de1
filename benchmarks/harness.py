"""Side-by-side timing of gpunet against PyTorch: alternating runs, medians, spread, JSON.

The convention everywhere: ``ratio = throughput(gpunet) / throughput(PyTorch)``, computed
per alternating pair (PyTorch time / gpunet time) and reported as the median over pairs;
``ratio > 1`` means gpunet is faster.

Example:
    >>> from benchmarks.harness import compare
    >>> r = compare("noop", lambda: None, lambda: None, items=1, reps=7)
    >>> sorted(r)[:3]
    ['gpunet', 'inner', 'items']
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RATIO_CONVENTION = "ratio = gpunet throughput / PyTorch throughput (>1 means gpunet is faster)"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Machine facts stored with every result: CPU model, cores, Python, NumPy and torch versions."""
    import numpy as np

    info = {"cpu_model": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "hostname": platform.node(),
            "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch"] = None
    return info


def machine_slug(info: dict) -> str:
    """A short file-name-safe machine name such as ``amd-epyc-2c``."""
    model = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*", "", info["cpu_model"].lower())
    words = re.findall(r"[a-z0-9]+", model)[:4]
    return "-".join(words + [f"{info['cores']}c"]) if words else f"cpu-{info['cores']}c"


def thread_info() -> dict:
    """Thread counts of both frameworks: torch intra-op threads and the BLAS pools NumPy uses."""
    info = {"env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "MKL_NUM_THREADS") if k in os.environ}}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch_threads"] = None
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{"library": p.get("internal_api"), "threads": p.get("num_threads"),
                         "prefix": p.get("prefix")} for p in threadpool_info()]
    except ImportError:
        info["blas"] = "threadpoolctl not installed; see env"
    return info


def _spread(times):
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"min": min(times), "q1": q[0], "median": statistics.median(times), "q3": q[2],
            "max": max(times)}


def _calibrate(fn, sync, min_rep_s):
    """How many calls make one timed repetition last at least ``min_rep_s``."""
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    return max(1, int(min_rep_s / once + 0.999))


def compare(name, gpunet_fn, torch_fn, items, reps=7, warmup=2, min_rep_s=0.05,
            sync_gpunet=lambda: None, sync_torch=lambda: None, extra=None) -> dict:
    """Time two callables alternately (A B A B …) after warm-up; return a result record.

    Each repetition runs ``inner`` calls (calibrated so a repetition lasts >= min_rep_s) and
    its time is divided by ``inner``.  ``items`` is images per call, for images/s.

    Example:
        >>> rec = compare("lenet step b64", step_g, step_t, items=64)
        >>> rec["ratio"]["median"] > 1   # gpunet faster
    """
    for _ in range(warmup):
        gpunet_fn(); sync_gpunet()
        torch_fn(); sync_torch()
    inner = max(_calibrate(gpunet_fn, sync_gpunet, min_rep_s), _calibrate(torch_fn, sync_torch, min_rep_s))
    tg, tt = [], []
    for _ in range(reps):
        for fn, sync, out in ((gpunet_fn, sync_gpunet, tg), (torch_fn, sync_torch, tt)):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            out.append((time.perf_counter() - t0) / inner)
    ratios = [t / g for g, t in zip(tg, tt)]
    rec = {"name": name, "items": items, "reps": reps, "inner": inner,
           "gpunet": {"seconds": _spread(tg), "items_per_s": items / statistics.median(tg)},
           "torch": {"seconds": _spread(tt), "items_per_s": items / statistics.median(tt)},
           "ratio": _spread(ratios)}
    if extra:
        rec.update(extra(rec))
    return rec


def format_record(rec) -> str:
    """One table row: medians, spread (min–max), images/s and the ratio."""
    g, t, r = rec["gpunet"], rec["torch"], rec["ratio"]
    ms = lambda s: f"{s['median'] * 1e3:8.2f} ms [{s['min'] * 1e3:.2f}–{s['max'] * 1e3:.2f}]"
    row = (f"{rec['name']:<28} gpunet {ms(g['seconds'])} {g['items_per_s']:9.0f}/s | "
           f"torch {ms(t['seconds'])} {t['items_per_s']:9.0f}/s | "
           f"ratio {r['median']:5.2f} [{r['min']:.2f}–{r['max']:.2f}]")
    for key in ("gpunet_gflops", "torch_gflops"):
        if key in rec:
            row += f" | {key.split('_')[0]} {rec[key]:.1f} GFLOP/s"
    return row


def header() -> str:
    """The lines printed above every table: the ratio convention and both thread counts."""
    th = thread_info()
    blas = th["blas"] if isinstance(th["blas"], str) else ", ".join(
        f"{p['library']}={p['threads']}" for p in th["blas"])
    return (f"# {RATIO_CONVENTION}\n# times: median [min–max] of alternating repetitions\n"
            f"# threads: torch={th['torch_threads']}  numpy BLAS: {blas}  env: {th['env']}")


def write_results(records, backend, suites, tag="") -> Path:
    """Write ``benchmarks/results/<machine>-<backend>-<date>[-tag].json`` and return its path."""
    info = machine_info()
    date = datetime.date.today().isoformat()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"{machine_slug(info)}-{backend}-{date}" + (f"-{tag}" if tag else "")
    path = RESULTS_DIR / f"{stem}.json"
    doc = {"machine": info, "loadavg_at_start": records.pop("_loadavg_at_start", None), "backend": backend, "date": date,
           "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
           "ratio_convention": RATIO_CONVENTION, "threads": thread_info(), "suites": suites,
           "results": records}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
