"""End-to-end behaviour a user relies on: determinism across thread counts, accuracy on
Fashion-MNIST, overfitting on the synthetic set."""
from pathlib import Path

import polars as pl

from conftest import run_drift, skip

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def test_threads_do_not_change_a_bit(tmp_path, cache_dir):
    outs = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}"
        run_drift("train", "--dataset", "synthetic", "--width", 96, "--epochs", 3, "--train-size", 3000,
                  "--batch", 100, "--seed", 7, "--snapshots", "0,1,last", "--threads", threads, "--out", out,
                  env={"DRIFT_CACHE": str(cache_dir)})
        outs.append(out)
    one, two = outs
    names = sorted(p.name for p in (one / "snapshots").iterdir())
    assert names == ["epoch=000000.parquet", "epoch=000001.parquet", "epoch=000003.parquet"]
    for name in names:
        assert (one / "snapshots" / name).read_bytes() == (two / "snapshots" / name).read_bytes(), name
    drop = ["seconds"]
    assert pl.read_parquet(one / "history.parquet").drop(drop).equals(pl.read_parquet(two / "history.parquet").drop(drop))
    for table in ["deviation.parquet", "conditional.parquet", "hist2d.parquet"]:
        assert pl.read_parquet(one / table).equals(pl.read_parquet(two / table)), table
    assert pl.read_parquet(one / "runs.parquet").drop("wall_seconds").equals(
        pl.read_parquet(two / "runs.parquet").drop("wall_seconds"))


def test_fashion_mnist_reaches_the_expected_accuracy(tmp_path, cache_dir):
    if not FASHION.exists():
        skip("fashion-mnist", f"{FASHION.parent} is missing; install the Debian package dataset-fashion-mnist")
    out = tmp_path / "f"
    run_drift("train", "--dataset", "fashion-mnist", "--width", 256, "--epochs", 5, "--out", out,
              env={"DRIFT_CACHE": str(cache_dir)})
    history = pl.read_parquet(out / "history.parquet").sort("epoch")
    assert history["test_acc"][-1] >= 0.84, history
    assert (out / "runs.parquet").exists() and len(list((out / "snapshots").iterdir())) == 4  # 0,1,2,5


def test_synthetic_overfits(tmp_path, cache_dir):
    out = tmp_path / "s"
    run_drift("train", "--dataset", "synthetic", "--width", 64, "--epochs", 30, "--train-size", 2000,
              "--snapshots", "0,last", "--out", out, env={"DRIFT_CACHE": str(cache_dir)})
    h = pl.read_parquet(out / "history.parquet").sort("epoch")
    last = h.row(-1, named=True)
    assert last["train_loss"] < 0.5 * last["test_loss"], h
    assert h["test_loss"].min() < h["test_loss"][0], "it does learn before overfitting"


def test_every_kernel_trains_alike_and_is_recorded(tmp_path, cache_dir):
    """Forced kernels run, are recorded, and agree to rounding (they sum in different orders)."""
    finals, ids = {}, set()
    for kernel in ("portable", "matrixmultiply", "auto"):
        out = tmp_path / kernel
        run_drift("train", "--dataset", "synthetic", "--width", 40, "--epochs", 2, "--train-size", 1000,
                  "--kernel", kernel, "--snapshots", "last", "--out", out, env={"DRIFT_CACHE": str(cache_dir)})
        run = pl.read_parquet(out / "runs.parquet").row(0, named=True)
        assert run["kernel"] == kernel or (kernel == "auto" and run["kernel"] in ("avx512", "avx2", "portable"))
        ids.add(run["run_id"])
        finals[kernel] = pl.read_parquet(out / "history.parquet").sort("epoch")["train_loss"].to_list()
    assert len(ids) == 3, "the arithmetic class (fma, portable, matrixmultiply) is part of the run id"
    for kernel, losses in finals.items():
        for a, b in zip(losses, finals["matrixmultiply"]):
            assert abs(a - b) <= 1e-4 * abs(b), (kernel, losses, finals["matrixmultiply"])
