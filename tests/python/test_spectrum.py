"""spectrum.parquet against NumPy: the singular values of ΔW = W − W0, W0 and W of every layer
at every snapshot epoch, computed here with numpy.linalg.svd from the bit-exact snapshots, agree
to 1e-6 relative (of the largest value of the matrix); the stable rank and the top-k shares
follow from them; DuckDB reads the table."""
import duckdb
import numpy as np
import polars as pl
import pytest

REL = 1e-6


def weights(snapshot):
    frame = pl.read_parquet(snapshot).filter(pl.col("kind") == "weight")
    out = {}
    for layer in frame["layer"].unique().sort():
        w = frame.filter(pl.col("layer") == layer)
        m = np.zeros((w["row"].max() + 1, w["col"].max() + 1))
        m[w["row"].to_numpy(), w["col"].to_numpy()] = w["w"].to_numpy().astype(np.float64)
        out[layer] = m
    return out


@pytest.fixture(scope="module")
def spectrum(synthetic_run):
    return pl.read_parquet(synthetic_run / "spectrum.parquet")


def test_singular_values_match_numpy(synthetic_run, spectrum):
    snapshots = sorted((synthetic_run / "snapshots").glob("epoch=*.parquet"))
    assert len(snapshots) == 7
    w0 = weights(snapshots[0])
    checked = 0
    for path in snapshots:
        epoch = int(path.stem.split("=")[1])
        w = weights(path)
        for layer, m in w.items():
            for matrix, values in (("dw", m - w0[layer]), ("w0", w0[layer]), ("w", m)):
                want = np.linalg.svd(values, compute_uv=False)
                rows = spectrum.filter((pl.col("epoch") == epoch) & (pl.col("layer") == layer)
                                       & (pl.col("matrix") == matrix)).sort("index")
                assert rows["index"].to_list() == list(range(len(want))), (epoch, layer, matrix)
                got = rows["sigma"].to_numpy()
                scale = max(want[0], 1e-300)
                np.testing.assert_allclose(got, want, rtol=0, atol=REL * scale, err_msg=f"{epoch} {layer} {matrix}")
                first = rows.row(0, named=True)
                energy = float(np.sum(want ** 2))
                if energy == 0.0:
                    assert epoch == 0 and matrix == "dw"
                    assert first["stable_rank"] is None and first["top1_share"] is None
                else:
                    assert first["stable_rank"] == pytest.approx(energy / want[0] ** 2, rel=REL)
                    for k in (1, 5, 10):
                        share = float(np.sum(want[:k] ** 2)) / energy
                        assert first[f"top{k}_share"] == pytest.approx(share, rel=REL, abs=1e-12)
                later = rows.filter(pl.col("index") > 0)
                assert later["stable_rank"].null_count() == later.height
                checked += 1
    assert checked == 7 * 3 * 3


def test_duckdb_reads_the_spectrum(synthetic_run):
    path = synthetic_run / "spectrum.parquet"
    got = duckdb.sql(f"""
        SELECT layer, stable_rank, top1_share FROM '{path}'
        WHERE matrix = 'dw' AND index = 0 AND epoch = (SELECT max(epoch) FROM '{path}')
        ORDER BY layer""").fetchall()
    assert [layer for layer, _, _ in got] == [1, 2, 3]
    # The change of the 10-class layer has rank at most 10; every stable rank is at least 1.
    assert all(1.0 <= rank for _, rank, _ in got) and got[2][1] <= 10.0
    assert all(0.0 < share <= 1.0 for _, _, share in got)
