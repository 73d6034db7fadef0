"""Crashes and interruptions: a `drift train` killed at random points (SIGKILL, seeded) and
continued with --resume ends with snapshot files byte-identical to an uninterrupted run's and
the same table rows (wall-clock columns aside); SIGINT stops it within seconds with status 130
and a checkpoint."""
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from conftest import drift_bin, make_idx_dataset, run_drift

WALL_CLOCK = {"history.parquet": ["seconds"], "runs.parquet": ["wall_seconds"]}
TABLES = ["runs.parquet", "history.parquet", "deviation.parquet", "conditional.parquet", "hist2d.parquet"]


@pytest.fixture(scope="module")
def job(tmp_path_factory, cache_dir):
    """The options of a run whose epochs are short and whose snapshots (every epoch, W = 192)
    take a good share of its time, so random kills land in snapshot and checkpoint writes too;
    and its uninterrupted result."""
    root = tmp_path_factory.mktemp("crash")
    data = make_idx_dataset(root / "data", n_train=6000, n_test=500, side=28, classes=10, seed=5)
    args = ["train", "--dataset", f"idx:{data}", "--width", 192, "--epochs", 10, "--seed", 2,
            "--snapshots", "every:1", "--threads", 2]
    env = {"DRIFT_CACHE": str(cache_dir)}
    reference = root / "reference"
    started = time.monotonic()
    run_drift(*args, "--out", reference, env=env)
    return {"root": root, "args": args, "env": env, "reference": reference, "seconds": time.monotonic() - started}


def start(job, out, resume):
    cmd = [drift_bin(), *map(str, job["args"]), "--out", str(out)] + (["--resume"] if resume else [])
    env = dict(os.environ, **job["env"])
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def assert_same_run(job, out: Path):
    ref = job["reference"]
    names = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file() and p.name != "run.json")
    assert names(out) == names(ref), "same files, no checkpoint or temporary left"
    for snap in sorted((ref / "snapshots").iterdir()):
        assert (out / "snapshots" / snap.name).read_bytes() == snap.read_bytes(), f"{snap.name} differs"
    for table in TABLES:
        drop = WALL_CLOCK.get(table, [])
        a = pl.read_parquet(ref / table).drop(drop)
        b = pl.read_parquet(out / table).drop(drop)
        assert a.equals(b), f"{table}: rows differ\n{a}\n{b}"


def test_sigkill_at_random_points_then_resume_is_bit_exact(job):
    rng = random.Random(20261129)
    kills = 0
    for trial in range(10):
        out = job["root"] / f"trial{trial}"
        for attempt in range(rng.randint(1, 3)):
            proc = start(job, out, resume=attempt > 0)
            time.sleep(rng.uniform(0.05, 0.8) * job["seconds"])
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        proc = start(job, out, resume=True)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert_same_run(job, out)
    assert kills >= 10, f"only {kills} kills landed; the run is too short for this test"


def test_sigint_stops_within_seconds_with_a_checkpoint(job):
    out = job["root"] / "sigint"
    proc = start(job, out, resume=False)
    time.sleep(job["seconds"] / 3)
    assert proc.poll() is None, "still running"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0, "stops after the current batch"
    assert proc.returncode == 130, err
    assert "--resume" in err
    assert (out / "checkpoint.bin").is_file()
    assert not (out / "runs.parquet").exists(), "an interrupted run is not finished"
    proc = start(job, out, resume=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert_same_run(job, out)


def test_resume_refuses_a_folder_of_another_run(job):
    args = list(job["args"])
    args[args.index("--seed") + 1] = 99
    other = run_drift(*args, "--resume", "--out", job["reference"], check=False, env=job["env"])
    assert other.returncode == 2
    assert "another configuration" in other.stderr


def test_a_damaged_checkpoint_is_refused(job):
    out = job["root"] / "damaged"
    proc = start(job, out, resume=False)
    time.sleep(job["seconds"] / 2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    ckpt = out / "checkpoint.bin"
    data = bytearray(ckpt.read_bytes())
    data[100] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    proc = start(job, out, resume=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "checkpoint.bin" in err and "damaged" in err
