"""Shared fixtures: the drift binary, small IDX data sets written here, and finished runs; and
`skip`, how a test says it cannot run here."""
import gzip
import os
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest


def skip(capability: str, reason: str):
    """Skips the calling test for want of `capability` (a short word: `root`, `fashion-mnist`,
    `slurm`, ...): appends `capability: reason` to the file named by DRIFT_SKIP_LOG (when set),
    which `make test` sums up at its end. Fails the test instead when DRIFT_REQUIRE (a space- or
    comma-separated list) names the capability. The Rust tests' `drift_skip::skip` is the same."""
    required = os.environ.get("DRIFT_REQUIRE", "")
    if capability in re.split(r"[\s,]+", required):
        pytest.fail(f"{capability} is required here (DRIFT_REQUIRE={required!r}), but this test cannot run: {reason}",
                    pytrace=False)
    line = f"{capability}: {reason}"
    log = os.environ.get("DRIFT_SKIP_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(line + "\n")  # one short write in append mode: lines of parallel tests do not mix
    print(f"SKIPPED {line}")
    pytest.skip(line)


def drift_bin() -> str:
    path = os.environ.get("DRIFT_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("DRIFT_BIN must point to the built drift binary (run the tests through `make test`)")
    return path


def run_drift(*args, check=True, env=None, cwd=None):
    """Runs `drift ARGS`; on an unexpected status fails with its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([drift_bin(), *map(str, args)], capture_output=True, text=True, env=full_env, cwd=cwd)
    if check and proc.returncode != 0:
        pytest.fail(f"drift {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stderr}")
    return proc


def write_idx(path: Path, array: np.ndarray, gz: bool = False):
    """Writes an unsigned-byte IDX file (the format of MNIST)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def make_idx_dataset(folder: Path, n_train: int, n_test: int, side: int, classes: int, seed: int) -> Path:
    """A small learnable data set: labels are the arg-max of a fixed random projection."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(side * side, classes))

    def split(n):
        images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labels = np.argmax((images.reshape(n, -1) / 255.0) @ projection, axis=1).astype(np.uint8)
        return images, labels

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = split(n)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("drift-cache")


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory, cache_dir):
    """A finished small synthetic run with snapshots at every epoch: the tables to inspect."""
    out = tmp_path_factory.mktemp("runs") / "synthetic"
    run_drift(
        "train", "--dataset", "synthetic", "--width", 48, "--depth", 2, "--epochs", 6,
        "--train-size", 1500, "--seed", 3, "--snapshots", "every:1", "--threads", 2, "--out", out,
        env={"DRIFT_CACHE": str(cache_dir)},
    )
    return out
