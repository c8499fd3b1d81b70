"""Shared by the kernel benchmarks: device choice, check-then-time, CUDA-event timing, the table
and the JSON record (benchmarks/results/kernels.jsonl)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]


def setup(description: str) -> argparse.Namespace:
    """Parse --cpu/--iters; --cpu switches Triton to its interpreter (before triton is imported)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cpu", action="store_true", help="tiny shapes in the Triton interpreter (no GPU)")
    ap.add_argument("--iters", type=int, default=100)
    args = ap.parse_args()
    if args.cpu:
        os.environ["TRITON_INTERPRET"] = "1"
        args.iters = 2
    return args


def device(args) -> str:
    import torch

    if args.cpu:
        return "cpu"
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --cpu for the interpreter at tiny shapes")
    return "cuda"


def time_ms(fn: Callable[[], object], iters: int, dev: str) -> tuple[float, float]:
    """(median, p99) ms per call after discarded warm-up; CUDA events on a GPU."""
    import numpy as np
    import torch

    for _ in range(3 if dev == "cuda" else 1):
        fn()
    samples = []
    for _ in range(iters):
        if dev == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            samples.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
    return float(np.median(samples)), float(np.percentile(samples, 99))


def check(name: str, error: float, tol: float) -> None:
    if not error < tol:
        sys.exit(f"{name}: max error {error:.3g} >= {tol:g} against the reference; not timing a wrong kernel")


def report(bench: str, dev: str, rows: list[dict]) -> None:
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_e2e import commit, machine, versions

    name = "CPU (interpreter)" if dev == "cpu" else torch.cuda.get_device_name(0)
    print(f"\n{bench} on {name}\n\n| case | max err | kernel median ms | p99 ms | torch median ms | speedup |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['max_err']:.2e} | {r['ms']:.4f} | {r['p99_ms']:.4f} | {r['torch_ms']:.4f} | "
              f"{r['torch_ms'] / r['ms']:.2f}x |")
    if dev == "cpu":  # interpreter timings say nothing about the kernel; no record
        return
    rec = {"bench": bench, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "device": name,
           "machine": machine(), "versions": versions(), "rows": rows}
    with open(ROOT / "benchmarks" / "results" / "kernels.jsonl", "a") as fh:
        fh.write(json.dumps(rec) + "\n")
