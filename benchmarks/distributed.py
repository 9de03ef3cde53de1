"""All-reduce time against message size, and a data-parallel step split into compute and
communication, on K local ranks (MPI, NumPy buffers); then the alpha-beta model fitted to it.

    mpiexec -n 2 python benchmarks/distributed.py                     # prints tables
    mpiexec -n 2 python benchmarks/distributed.py --json benchmarks/results/distributed.json

In the step split a barrier is timed before each gradient all-reduce: "wait" is the time a rank
idles there for the slower one (load imbalance, other users of the machine), "all-reduce" the
transfer itself, "compute" the rest of the step (forward, backward, optimiser). The fit is
t(m) = alpha + beta * m over the sizes measured (least squares on relative error).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import gpunet as gn
from gpunet import nn, optim

SIZES = [4 * 4**k for k in range(13)]  # 4 B .. 64 MiB


def _median_time(fn, comm, min_time=0.2, max_calls=200):
    """Median seconds per call over batches of calls (each batch started after a barrier)."""
    fn()
    comm.barrier()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    calls = int(min(max_calls, max(3, min_time / one)))
    calls = int(comm.mpi.bcast(calls, root=0)) if comm.mpi is not None else calls  # same count everywhere
    times = []
    for _ in range(5):
        comm.barrier()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return float(np.median(times))


def allreduce_sweep(comm, max_bytes):
    be = gn.backends.backend("numpy")
    rows = []
    for nbytes in (n for n in SIZES if n <= max_bytes):
        buf = np.ones(nbytes // 4, np.float32)
        seconds = _median_time(lambda: comm.allreduce_array(buf, be, "sum"), comm)
        rows.append({"bytes": nbytes, "seconds": seconds, "algbw_GBps": nbytes / seconds / 1e9})
    return rows


def fit_alpha_beta(rows):
    m = np.array([r["bytes"] for r in rows], float)
    t = np.array([r["seconds"] for r in rows], float)
    # Weighted least squares on relative error: small and large messages count alike.
    a = np.stack([np.ones_like(m), m], 1) / t[:, None]
    alpha, beta = np.linalg.lstsq(a, np.ones_like(t), rcond=None)[0]
    return float(alpha), float(beta)


def larger_convnet():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))


def step_split(comm, name, model, batch, steps):
    gn.manual_seed(0)
    model = gn.distributed.DataParallel(model, comm)
    spent = [0.0, 0.0]  # waiting at the barrier, inside the all-reduce
    reduce = comm.allreduce_array

    def timed(array, be, op="sum"):
        t0 = time.perf_counter()
        comm.barrier()
        t1 = time.perf_counter()
        out = reduce(array, be, op)
        spent[0] += t1 - t0
        spent[1] += time.perf_counter() - t1
        return out

    comm.allreduce_array = timed
    rng = np.random.default_rng(comm.rank)
    x = gn.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = gn.tensor(rng.integers(0, 10, batch))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    comm.barrier()
    spent[:] = [0.0, 0.0]
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    total = (time.perf_counter() - t0) / steps
    comm.allreduce_array = reduce
    grad_bytes = sum(p._data.nbytes for p in model.parameters())
    return {"model": name, "per_rank_batch": batch, "params": grad_bytes // 4, "grad_bytes": grad_bytes,
            "buckets": len(model.buckets), "step_s": total, "wait_s": spent[0] / steps,
            "comm_s": spent[1] / steps, "compute_s": total - sum(spent) / steps}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the figures here (rank 0)")
    p.add_argument("--steps", type=int, default=10, help="timed steps of LeNet-5 (the larger convnet: half)")
    p.add_argument("--max-bytes", type=int, default=SIZES[-1], help="largest all-reduce message (default 64 MiB)")
    args = p.parse_args()
    gn.set_backend("numpy")
    comm = gn.distributed.init()
    load_before = os.getloadavg()
    sweep = allreduce_sweep(comm, args.max_bytes)
    alpha, beta = fit_alpha_beta(sweep)
    splits = [step_split(comm, "LeNet-5", gn.models.lenet5(), 32, args.steps),
              step_split(comm, "convnet 32-64-128 + fc256", larger_convnet(), 32, max(1, args.steps // 2))]
    if comm.rank != 0:
        return
    print(f"{comm.size} ranks on {platform.node()} ({os.cpu_count()} cores), gpunet threads per rank "
          f"{gn.get_num_threads()}, load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'bytes':>10} {'time (us)':>10} {'algbw (GB/s)':>13}")
    for r in sweep:
        print(f"{r['bytes']:>10} {1e6 * r['seconds']:>10.1f} {r['algbw_GBps']:>13.3f}")
    print(f"fit: t(m) = {1e6 * alpha:.1f} us + m / ({1 / beta / 1e9:.2f} GB/s)")
    for s in splits:
        print(f"{s['model']}: {s['params']:,} params ({s['grad_bytes'] / 1e6:.2f} MB of gradients, "
              f"{s['buckets']} bucket(s)), batch {s['per_rank_batch']}/rank: step {1e3 * s['step_s']:.1f} ms = "
              f"compute {1e3 * s['compute_s']:.1f} ms + wait {1e3 * s['wait_s']:.2f} ms + all-reduce "
              f"{1e3 * s['comm_s']:.2f} ms "
              f"(model: {1e3 * (alpha + beta * s['grad_bytes']):.2f} ms)")
    if args.json:
        record = {"ranks": comm.size, "host": platform.node(), "cores": os.cpu_count(),
                  "threads_per_rank": gn.get_num_threads(), "loadavg_before": load_before,
                  "loadavg_after": os.getloadavg(), "allreduce": sweep,
                  "fit": {"alpha_s": alpha, "beta_s_per_byte": beta}, "steps": splits,
                  "mpi": __import__("mpi4py.MPI", fromlist=["MPI"]).Get_library_version().strip()}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
