"""The outside baseline: NumPy (OpenBLAS) on the GEMM shapes of drift's benchmarks and one epoch
of the same training (batch 128, two hidden layers, float32). Prints one JSON object per line:
{"case": ..., "threads": T, "seconds": s, "flops": f}. The thread count is OpenBLAS's, fixed by
OPENBLAS_NUM_THREADS before NumPy is imported (the caller runs this once per count)."""
import json
import os
import sys
import time

import numpy as np

BATCH, INPUT, CLASSES, WIDTHS = 128, 784, 10, (128, 512, 1000)
QUICK = os.environ.get("DRIFT_BENCH_QUICK", "0") not in ("", "0")
THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))


def best_time(fn, repeat, number):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def gemm_cases():
    """The same cases, ids and layouts as benches/src/lib.rs."""
    for width in WIDTHS:
        sizes = [INPUT, width, width, CLASSES]
        for layer in (1, 2, 3):
            fan_in, fan_out = sizes[layer - 1], sizes[layer]
            yield width, layer, "forward", BATCH, fan_out, fan_in
            if layer > 1:
                yield width, layer, "backward_data", BATCH, fan_in, fan_out
            yield width, layer, "weight_grad", fan_out, fan_in, BATCH


def bench_gemm(rng):
    for width, layer, layout, m, n, k in gemm_cases():
        if layout == "forward":  # X (m×k) · Wᵀ, W n×k
            a, b = rng.random((m, k), dtype=np.float32), rng.random((n, k), dtype=np.float32)
            fn = lambda a=a, b=b: a @ b.T
        elif layout == "backward_data":  # dZ (m×k) · W, W k×n
            a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
            fn = lambda a=a, b=b: a @ b
        else:  # dZᵀ (dZ k×m) · X (k×n)
            a, b = rng.random((k, m), dtype=np.float32), rng.random((k, n), dtype=np.float32)
            fn = lambda a=a, b=b: a.T @ b
        flops = 2 * m * n * k
        number = max(1, int(2e8 / flops)) if QUICK else max(3, int(2e9 / flops))
        seconds = best_time(fn, 3 if QUICK else 7, number)
        case = f"W{width}/{layout}/L{layer}/m{m}n{n}k{k}"
        print(json.dumps({"case": case, "threads": THREADS, "seconds": seconds, "flops": flops}), flush=True)


def epoch(rng, width, x, y):
    """One epoch of plain SGD with the keras-clipped loss, as drift trains, in float32."""
    sizes = [INPUT, width, width, CLASSES]
    ws = [rng.uniform(-1, 1, (o, i)).astype(np.float32) * np.float32(np.sqrt(6 / (i + o))) for i, o in zip(sizes, sizes[1:])]
    bs = [np.zeros(o, dtype=np.float32) for o in sizes[1:]]
    lr = np.float32(0.1)
    n = len(y)
    order = rng.permutation(n)
    start = time.perf_counter()
    for s in range(0, n, BATCH):
        idx = order[s:s + BATCH]
        acts = [x[idx]]
        for i, (w, b) in enumerate(zip(ws, bs)):
            z = acts[-1] @ w.T + b
            acts.append(np.maximum(z, 0) if i < 2 else z)
        z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(len(idx))
        py = p[rows, y[idx]]
        live = ((py >= 1e-7) & (py <= 1 - 1e-7)).astype(np.float32)
        p[rows, y[idx]] -= 1
        dz = p * (live / np.float32(len(idx)))[:, None]
        for i in (2, 1, 0):
            dw, db = dz.T @ acts[i], dz.sum(axis=0)
            if i > 0:
                dz = (dz @ ws[i]) * (acts[i] > 0)
            ws[i] -= lr * dw
            bs[i] -= lr * db
    return time.perf_counter() - start


def bench_epochs(rng):
    x = rng.random((60000, INPUT), dtype=np.float32)
    y = rng.integers(0, CLASSES, 60000)
    for width in WIDTHS:
        p = INPUT * width + width * width + width * CLASSES
        flops = sum(len(range(s, min(s + BATCH, 60000))) * (6 * p - 2 * INPUT * width) for s in range(0, 60000, BATCH))
        seconds = min(epoch(rng, width, x, y) for _ in range(2 if QUICK else 3))
        print(json.dumps({"case": f"epoch_W{width}", "threads": THREADS, "seconds": seconds, "flops": flops}), flush=True)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    bench_gemm(rng)
    if "--epochs" in sys.argv:
        bench_epochs(rng)
