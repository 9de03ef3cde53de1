"""Race gpunet against PyTorch fairly: every (framework, case, round) in a fresh process.

Two frameworks in one process steal each other's cores: OpenBLAS's and OpenMP's worker threads
keep spinning after a call, so whichever framework runs next finds them busy (in-process, gpunet
looked 1.39x PyTorch where separate processes show about 0.5x).  Here each measurement is its
own ``benchmarks/worker.py`` process with the thread count fixed before import, the frameworks
alternate within every round, and the order flips between rounds.

``ratio = gpunet throughput / PyTorch throughput`` per round; reported as the median over rounds
with its min–max.  ``ratio > 1`` means gpunet is faster.

Example:
    >>> rec = race("lenet-step-b64", rounds=3, threads=2)
    >>> rec["ratio"]["median"]
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
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


def loadavg():
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def blas_kernel() -> str:
    """The kernel NumPy's OpenBLAS runs here (threadpoolctl), with OPENBLAS_CORETYPE if set."""
    import numpy  # noqa: F401  (loads NumPy's OpenBLAS, so threadpoolctl sees it)

    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        kernel = f"{blas[0].get('internal_api')} {blas[0].get('architecture')}" if blas else "none"
    except ImportError:
        kernel = "unknown (no threadpoolctl)"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return kernel + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")


def machine_info() -> dict:
    """Machine facts stored with every result: CPU model, cores, versions, BLAS kernel, load."""
    import numpy as np

    info = {"cpu_model": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "loadavg": loadavg(),
            "blas_kernel": blas_kernel()}
    try:
        import importlib.metadata as md

        info["torch"] = md.version("torch")
    except Exception:
        info["torch"] = None
    return info


def machine_slug(info: dict) -> str:
    """A short file-name-safe machine name such as ``intel-xeon-2c``."""
    model = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*", "", info["cpu_model"].lower())
    words = re.findall(r"[a-z0-9]+", model)[:3]
    return "-".join(words + [f"{info['cores']}c"]) if words else f"cpu-{info['cores']}c"


def run_worker(framework, case, threads, backend="numpy", reps=7, gpunet_src=None) -> dict:
    """One fresh process timing one case in one framework; returns its JSON record."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "worker.py"), "--framework", framework,
           "--case", case, "--threads", str(threads), "--backend", backend, "--reps", str(reps)]
    if gpunet_src and framework == "gpunet":  # time another checkout's gpunet (e.g. a baseline)
        cmd += ["--gpunet-src", str(gpunet_src)]
    before = loadavg()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"worker {framework} {case} failed:\n{res.stdout}\n{res.stderr}")
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    rec["loadavg_before"], rec["loadavg_after"] = before, loadavg()
    return rec


def _spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def race(case, rounds=3, threads=2, backend="numpy", reps=7, gpunet_src=None) -> dict:
    """Alternate gpunet and torch processes for ``rounds`` rounds; medians and ratio per round."""
    per = {"gpunet": [], "torch": []}
    for r in range(rounds):
        order = ("gpunet", "torch") if r % 2 == 0 else ("torch", "gpunet")
        for fw in order:
            per[fw].append(run_worker(fw, case, threads, backend, reps, gpunet_src))
    rec = {"case": case, "rounds": rounds, "threads": threads, "backend": backend}
    for fw, runs in per.items():
        meds = [statistics.median(x["seconds"]) for x in runs]
        rec[fw] = {"seconds_per_round": meds, "seconds": _spread(meds),
                   "items_per_s": _spread([runs[0]["items"] / m for m in meds]),
                   "items": runs[0]["items"], "flops": runs[0]["flops"],
                   "source": runs[0].get("source"), "runs": runs}
    rec["ratio"] = _spread([t / g for g, t in zip(rec["gpunet"]["seconds_per_round"],
                                                  rec["torch"]["seconds_per_round"])])
    return rec


def format_record(rec) -> str:
    """One table row: images/s median [min–max] of both, GFLOP/s where known, and the ratio."""
    def side(fw):
        s = rec[fw]["items_per_s"]
        text = f"{s['median']:8.0f}/s [{s['min']:.0f}–{s['max']:.0f}]"
        if rec[fw]["flops"]:
            text += f" {rec[fw]['flops'] / rec[fw]['seconds']['median'] / 1e9:6.1f} GFLOP/s"
        return text

    r = rec["ratio"]
    return (f"{rec['case']:<18} gpunet {side('gpunet')} | torch {side('torch')} | "
            f"ratio {r['median']:5.2f} [{r['min']:.2f}–{r['max']:.2f}]")


def header(threads, rounds, backend) -> str:
    info = machine_info()
    return (f"# {RATIO_CONVENTION}\n"
            f"# each (framework, case, round) in its own process; {rounds} alternating rounds; "
            f"median [min–max] over rounds\n"
            f"# threads: {threads} for both (OMP/OPENBLAS/MKL/GPUNET_NUM_THREADS, "
            f"torch.set_num_threads)\n"
            f"# machine: {info['cpu_model']}, {info['cores']} cores; backend {backend}; numpy "
            f"{info['numpy']}, torch {info['torch']}; BLAS {info.get('blas_kernel')}; load average "
            f"{info['loadavg']}")


def write_results(doc, text, backend, tag="") -> Path:
    """Write ``benchmarks/results/<machine>-<backend>-<date>[-tag].json`` and ``.txt``."""
    info = machine_info()
    date = datetime.date.today().isoformat()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"{machine_slug(info)}-{backend}-{date}" + (f"-{tag}" if tag else "")
    doc = dict(doc, machine=info, date=date, ratio_convention=RATIO_CONVENTION,
               timestamp=datetime.datetime.now().isoformat(timespec="seconds"))
    for suffix, body in ((".json", json.dumps(doc, indent=1) + "\n"), (".txt", text)):
        path = RESULTS_DIR / f"{stem}{suffix}"
        tmp = path.with_suffix(suffix + ".tmp")
        tmp.write_text(body)
        tmp.replace(path)  # written whole, then renamed: never a half file
    return RESULTS_DIR / f"{stem}.json"
