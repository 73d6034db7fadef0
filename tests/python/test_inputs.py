"""The knobs of the input scale: `input = "invert"`, the synthetic generator's shape, and the
`input_sq_norm` that runs.parquet records, recomputed here with NumPy; and the HASYv2 reader run
through the CLI on a release-shaped folder written by this test."""
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import polars as pl

from conftest import run_drift, skip

FASHION = Path("/usr/share/datasets/fashion-mnist")


def runs_row(out: Path) -> dict:
    return pl.read_parquet(out / "runs.parquet").row(0, named=True)


def test_invert_and_the_squared_norm_match_numpy(tmp_path, cache_dir):
    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        skip("fashion-mnist", f"{FASHION} is missing; install the Debian package dataset-fashion-mnist")
    raw = gzip.decompress((FASHION / "train-images-idx3-ubyte.gz").read_bytes())
    n = 700
    images = np.frombuffer(raw[16:16 + n * 784], dtype=np.uint8).reshape(n, 784) / 255.0
    rows = {}
    for transform in ("raw", "invert"):
        out = tmp_path / transform
        run_drift("train", "--dataset", "fashion-mnist", "--input", transform, "--train-size", n, "--width", 8,
                  "--epochs", 1, "--snapshots", "none", "--out", out, env={"DRIFT_CACHE": str(cache_dir)})
        rows[transform] = runs_row(out)
    x = {"raw": images, "invert": 1.0 - images}
    for transform, row in rows.items():
        expected = float(np.mean(np.sum(x[transform] ** 2, axis=1)))
        assert row["input"] == transform
        assert abs(row["input_sq_norm"] - expected) <= 1e-9 * expected, (transform, row["input_sq_norm"], expected)
    assert rows["raw"]["run_id"] != rows["invert"]["run_id"]
    assert rows["invert"]["input_sq_norm"] > 2.5 * rows["raw"]["input_sq_norm"]


def test_synthetic_shape_keys_enter_the_run_and_its_id(tmp_path, cache_dir):
    base = ["train", "--width", 8, "--epochs", 1, "--snapshots", "none"]
    config = tmp_path / "hasy-shaped.toml"
    config.write_text('dataset = "synthetic"\nsynthetic-side = 32\nsynthetic-classes = 40\n'
                      'synthetic-train = 600\nsynthetic-test = 100\nsynthetic-background = "white"\n'
                      'synthetic-imbalance = 10.0\n')
    out = tmp_path / "a"
    run_drift(*base, "--config", config, "--out", out, env={"DRIFT_CACHE": str(cache_dir)})
    a = runs_row(out)
    assert (a["input_dim"], a["classes"], a["train_size"], a["test_size"]) == (1024, 40, 600, 100)
    # Mostly white: far above the black-background set of the same shape.
    assert a["input_sq_norm"] > 500
    config.write_text(config.read_text().replace("imbalance = 10.0", "imbalance = 1.0"))
    out = tmp_path / "b"
    run_drift(*base, "--config", config, "--out", out, env={"DRIFT_CACHE": str(cache_dir)})
    assert runs_row(out)["run_id"] != a["run_id"]
    # The generator's keys are refused for real data, naming the key.
    proc = run_drift(*base, "--dataset", "mnist", "--config", config, "--out", tmp_path / "c", check=False)
    assert proc.returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "fashion-mnist"\nsynthetic-classes = 40\n')
    proc = run_drift(*base, "--config", bad, "--out", tmp_path / "d", check=False)
    assert proc.returncode == 2 and "--synthetic-classes: only for --dataset synthetic" in proc.stderr
    proc = run_drift(*base, "--dataset", "synthetic", "--input", "negative", "--out", tmp_path / "e", check=False)
    assert proc.returncode == 2 and "--input" in proc.stderr and "expected raw or invert" in proc.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


def png_grey(pixels: np.ndarray) -> bytes:
    """A minimal 8-bit greyscale PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[r].astype(np.uint8).tobytes() for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def hasy_release(root: Path, per_class: int = 12) -> Path:
    """A HASYv2-shaped release: 3 symbols drawn as different bars on white, fold 1 only."""
    rng = np.random.default_rng(5)
    (root / "hasy-data").mkdir(parents=True)
    fold = root / "classification-task" / "fold-1"
    fold.mkdir(parents=True)
    symbols = [31, 42, 1024]
    (root / "symbols.csv").write_text(
        "symbol_id,latex,training_samples,test_samples\n31,A,1,1\n42,\"\\{,\\}\",1,1\n1024,\\alpha,1,1\n")
    rows = []
    for k in range(per_class * len(symbols)):
        cls = k % len(symbols)
        image = np.full((32, 32), 255, dtype=np.uint8)
        image[4 + 8 * cls:10 + 8 * cls, 4:28] = 0
        image = np.clip(image.astype(int) - rng.integers(0, 40, size=(32, 32)), 0, 255)
        name = f"v2-{k:05d}.png"
        (root / "hasy-data" / name).write_bytes(png_grey(image))
        rows.append((f"hasy-data/{name}", symbols[cls]))
    (root / "hasy-data-labels.csv").write_text(
        "path,symbol_id,latex,user_id\n" + "".join(f"{p},{s},x,1\n" for p, s in rows))
    split = len(rows) * 3 // 4
    for name, part in (("train.csv", rows[:split]), ("test.csv", rows[split:])):
        (fold / name).write_text(
            "path,symbol_id,latex,user_id\n" + "".join(f"../../{p},{s},x,1\n" for p, s in part))
    return root


def test_hasyv2_release_trains_through_the_cli(tmp_path):
    release = hasy_release(tmp_path / "HASYv2")
    cache = tmp_path / "cache"
    out = tmp_path / "run"
    run_drift("train", "--dataset", "hasyv2", "--data-dir", release, "--width", 16, "--epochs", 3, "--batch", 9,
              "--lr", 0.1, "--snapshots", "none", "--out", out, env={"DRIFT_CACHE": str(cache)})
    row = runs_row(out)
    assert (row["dataset"], row["classes"], row["input_dim"], row["train_size"], row["test_size"]) == (
        "hasyv2", 3, 1024, 27, 9)
    assert row["input_sq_norm"] > 700, "white background"
    assert list((cache / "hasyv2").glob("*-fold-1-train.u8")), "decoded once into the cache"
    # The fold is part of the run: fold 2 is missing here, named with the folds present.
    proc = run_drift("train", "--dataset", "hasyv2", "--data-dir", release, "--fold", 2, "--out", tmp_path / "f2",
                     check=False, env={"DRIFT_CACHE": str(cache)})
    assert proc.returncode == 2 and "fold-2" in proc.stderr and "1" in proc.stderr, proc.stderr
    # A broken row names the file and the line.
    train_csv = release / "classification-task" / "fold-1" / "train.csv"
    lines = train_csv.read_text().splitlines()
    lines[3] = lines[3].replace(",42,", ",999,").replace(",31,", ",999,").replace(",1024,", ",999,")
    train_csv.write_text("\n".join(lines) + "\n")
    proc = run_drift("train", "--dataset", "hasyv2", "--data-dir", release, "--out", tmp_path / "bad",
                     check=False, env={"DRIFT_CACHE": str(cache)})
    assert proc.returncode == 2, proc.stderr
    assert "train.csv" in proc.stderr and "line 4" in proc.stderr and "999" in proc.stderr, proc.stderr
    assert not (tmp_path / "bad").exists()
    proc = run_drift("train", "--dataset", "hasyv2", "--out", tmp_path / "nowhere", check=False,
                     env={"DRIFT_CACHE": str(cache), "HASYV2_DIR": ""})
    assert proc.returncode == 2 and "HASYV2_DIR" in proc.stderr
