"""DuckDB and Polars read every table of a finished run: columns and types as DESIGN.md says,
and the invariants that tie the tables together."""
import json

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

I32, I64, U64, F32, F64, STR = pl.Int32, pl.Int64, pl.UInt64, pl.Float32, pl.Float64, pl.String

EXPECTED = {
    "runs.parquet": {
        "run_id": STR, "dataset": STR, "train_size": I64, "test_size": I64, "input_dim": I64, "classes": I64,
        "width": I64, "depth": I64, "seed": U64, "lr": F64, "batch_size": I64, "epochs": I32, "loss_mode": STR,
        "init": STR, "mask": STR, "kernel": STR, "input": STR, "input_sq_norm": F64, "optimizer": STR, "momentum": F64, "beta1": F64, "beta2": F64, "eps": F64, "target_loss": F64, "status": STR, "epochs_done": I32, "min_train_loss": F64,
        "epoch_min_train_loss": I32, "min_test_loss": F64, "epoch_min_test_loss": I32, "divergence_epoch": I32,
        "wall_seconds": F64,
    },
    "history.parquet": {
        "run_id": STR, "epoch": I32, "train_loss": F64, "train_acc": F64, "test_loss": F64, "test_acc": F64,
        "seconds": F64,
    },
    "deviation.parquet": {
        "run_id": STR, "epoch": I32, "layer": I32, "kind": STR, "n": I64, "mean": F64, "std": F64, "mean_abs": F64,
        "rms": F64, "max_abs": F64, "skewness": F64, "kurtosis": F64, "p01": F64, "p05": F64, "p25": F64,
        "p50": F64, "p75": F64, "p95": F64, "p99": F64, "rel_change": F64, "frac_beyond_limit": F64,
    },
    "conditional.parquet": {
        "run_id": STR, "epoch": I32, "layer": I32, "bin": I32, "w0_lo": F64, "w0_hi": F64, "count": I64,
        "mean_dw": F64, "std_dw": F64, "skew_dw": F64, "kurt_dw": F64, "mode_dw": F64, "p02": F64, "p25": F64,
        "p50": F64, "p75": F64, "p98": F64,
    },
    "hist2d.parquet": {
        "run_id": STR, "epoch": I32, "layer": I32, "w0_bin": I32, "w_bin": I32, "w0_lo": F64, "w0_hi": F64,
        "w_lo": F64, "w_hi": F64, "count": I64,
    },
}
SNAPSHOT = {"layer": I32, "kind": STR, "row": I32, "col": I32, "w": F32}
EPOCHS, DEPTH, WIDTH = 6, 2, 48


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_polars_reads_each_table_with_the_designed_schema(synthetic_run, name):
    frame = pl.read_parquet(synthetic_run / name)
    assert dict(frame.schema) == EXPECTED[name]
    assert frame.height > 0
    assert frame["run_id"].n_unique() == 1


def test_polars_reads_every_snapshot(synthetic_run):
    files = sorted((synthetic_run / "snapshots").glob("epoch=*.parquet"))
    assert [f.name for f in files] == [f"epoch={e:06d}.parquet" for e in range(EPOCHS + 1)]
    sizes = [784 * WIDTH + WIDTH, WIDTH * WIDTH + WIDTH, WIDTH * 10 + 10]
    for f in files:
        frame = pl.read_parquet(f)
        assert dict(frame.schema) == SNAPSHOT
        assert frame.height == sum(sizes)


def test_duckdb_reads_every_table_and_the_column_types(synthetic_run):
    con = duckdb.connect()
    duck = {"VARCHAR": STR, "INTEGER": I32, "BIGINT": I64, "UBIGINT": U64, "DOUBLE": F64, "FLOAT": F32}
    for name, columns in EXPECTED.items():
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{synthetic_run / name}')").fetchall()
        assert {row[0]: duck[row[1]] for row in described} == columns, name


def test_one_deviation_row_per_epoch_layer_kind(synthetic_run):
    con = duckdb.connect()
    dev = f"read_parquet('{synthetic_run / 'deviation.parquet'}')"
    total, distinct = con.execute(f"SELECT count(*), count(DISTINCT (epoch, layer, kind)) FROM {dev}").fetchone()
    assert total == distinct == (EPOCHS + 1) * (DEPTH + 1) * 2
    bad = con.execute(f"SELECT count(*) FROM {dev} WHERE NOT (p01 <= p05 AND p05 <= p25 AND p25 <= p50 "
                      f"AND p50 <= p75 AND p75 <= p95 AND p95 <= p99)").fetchone()[0]
    assert bad == 0


def test_epoch_zero_has_no_deviation(synthetic_run):
    frame = pl.read_parquet(synthetic_run / "deviation.parquet").filter(pl.col("epoch") == 0)
    for column in ["mean", "std", "mean_abs", "rms", "max_abs", "p01", "p05", "p25", "p50", "p75", "p95", "p99",
                   "frac_beyond_limit"]:
        assert (frame[column] == 0.0).all(), column
    assert (frame.filter(pl.col("kind") == "weight")["rel_change"] == 0.0).all()
    assert frame.filter(pl.col("kind") == "bias")["rel_change"].is_null().all(), "biases start at 0"
    assert frame["skewness"].is_null().all() and frame["kurtosis"].is_null().all()


def test_rel_change_recomputed_from_snapshots_by_duckdb(synthetic_run):
    con = duckdb.connect()
    snaps = f"read_parquet('{synthetic_run / 'snapshots' / '*.parquet'}', filename = true)"
    recomputed = con.execute(f"""
        WITH s AS (SELECT CAST(regexp_extract(filename, 'epoch=(\\d+)', 1) AS INTEGER) AS epoch, layer, kind, "row", col, w FROM {snaps}),
             w0 AS (SELECT layer, kind, "row", col, w AS w0 FROM s WHERE epoch = 0)
        SELECT s.epoch, s.layer,
               sqrt(sum((CAST(w AS DOUBLE) - w0) ^ 2)) / sqrt(sum(CAST(w0 AS DOUBLE) ^ 2)) AS rel
        FROM s JOIN w0 USING (layer, kind, "row", col)
        WHERE s.kind = 'weight' GROUP BY ALL ORDER BY ALL""").fetchall()
    table = dict(((e, l), r) for e, l, r in con.execute(
        f"SELECT epoch, layer, rel_change FROM read_parquet('{synthetic_run / 'deviation.parquet'}') "
        "WHERE kind = 'weight'").fetchall())
    assert len(recomputed) == (EPOCHS + 1) * (DEPTH + 1)
    for epoch, layer, rel in recomputed:
        assert abs(rel - table[(epoch, layer)]) <= 1e-6 * max(1.0, abs(rel)), (epoch, layer, rel)
    assert table[(EPOCHS, 1)] > 0


def test_conditional_and_hist2d_count_every_weight(synthetic_run):
    con = duckdb.connect()
    for name in ["conditional.parquet", "hist2d.parquet"]:
        counts = con.execute(f"SELECT epoch, layer, sum(count) FROM read_parquet('{synthetic_run / name}') "
                             "GROUP BY ALL ORDER BY ALL").fetchall()
        fan = {1: 784 * WIDTH, 2: WIDTH * WIDTH, 3: WIDTH * 10}
        assert len(counts) == (EPOCHS + 1) * (DEPTH + 1), name
        assert all(total == fan[layer] for _, layer, total in counts), name
    bins = con.execute(f"SELECT count(DISTINCT bin) FROM read_parquet('{synthetic_run / 'conditional.parquet'}')").fetchone()[0]
    assert bins == 50


def test_runs_row_and_metadata(synthetic_run):
    run = pl.read_parquet(synthetic_run / "runs.parquet").row(0, named=True)
    history = pl.read_parquet(synthetic_run / "history.parquet")
    assert run["status"] in ("completed", "diverged")
    assert run["epochs_done"] == EPOCHS and run["width"] == WIDTH and run["train_size"] == 1500
    assert run["lr"] == 0.1 and run["loss_mode"] == "keras-clipped" and run["init"] == "glorot-uniform"
    assert run["min_train_loss"] == history["train_loss"].min()
    assert history["epoch"].to_list() == list(range(EPOCHS + 1))
    meta = pq.read_metadata(synthetic_run / "history.parquet").metadata
    assert meta[b"drift.run_id"].decode() == run["run_id"]
    assert meta[b"drift.width"] == b"48" and b"drift.threads" not in meta
    info = json.loads((synthetic_run / "run.json").read_text())
    assert info["run_id"] == run["run_id"] and info["status"] == run["status"]
    assert info["provenance"]["threads"] == 2
    assert run["kernel"] in ("avx512", "avx2", "portable") and info["provenance"]["kernel"] == run["kernel"]
    arithmetic = {"avx512": "fma", "avx2": "fma", "portable": "portable"}[run["kernel"]]
    assert meta[b"drift.arithmetic"].decode() == arithmetic and b"drift.kernel" not in meta
