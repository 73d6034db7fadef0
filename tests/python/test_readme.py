"""The README's DuckDB and Polars examples run against a real finished run, and what they
compute is checked against the same numbers read independently (pyarrow and NumPy)."""
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def run_blocks(synthetic_run, tmp_path, monkeypatch):
    """Runs each README block in a folder whose runs/ holds the test run; their variables."""
    blocks = python_blocks()
    assert len(blocks) >= 2, "the README shows a DuckDB and a Polars example"
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "example").symlink_to(synthetic_run)
    monkeypatch.chdir(tmp_path)
    names = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), names)
    return names


def snapshot(run: Path, epoch: int, layer: int) -> np.ndarray:
    """Layer `layer`'s weight matrix at `epoch`, from its snapshot."""
    t = {k: np.asarray(v) for k, v in pq.read_table(run / "snapshots" / f"epoch={epoch:06d}.parquet").to_pydict().items()}
    keep = (t["layer"] == layer) & (t["kind"] == "weight")
    rows, cols = t["row"][keep], t["col"][keep]
    w = np.zeros((rows.max() + 1, cols.max() + 1), dtype=np.float64)
    w[rows, cols] = t["w"][keep]
    return w


def test_readme_examples_compute_the_runs_numbers(synthetic_run, tmp_path, monkeypatch, capsys):
    names = run_blocks(synthetic_run, tmp_path, monkeypatch)
    printed = capsys.readouterr().out

    # DuckDB: the loss curves are the history table, joined with the run's width.
    history = sorted(zip(*(pq.read_table(synthetic_run / "history.parquet").column(c).to_pylist()
                           for c in ["epoch", "train_loss", "test_loss"])))
    width = pq.read_table(synthetic_run / "runs.parquet").column("width")[0].as_py()
    want = [(width, e, tr, te) for e, tr, te in history]
    assert names["curves"] == want
    assert len(want) == 7 and width == 48, "the fixture's 6 epochs and width"

    # DuckDB: the largest move of a hidden→hidden weight in epoch 1, from the two snapshots.
    moved = np.abs(snapshot(synthetic_run, 1, 2) - snapshot(synthetic_run, 0, 2)).max()
    assert names["moved"] == moved and moved > 0
    assert printed.splitlines()[0] == f"{len(want)} {names['moved']}"

    # Polars: the last epoch's rows of the deviation table, and rel_change = ‖W − W0‖ / ‖W0‖.
    last = names["last"].select("layer", "kind", "mean_abs", "p50", "rel_change")
    assert last.height == 3 * 2, "3 layers × weight and bias"
    epochs = history[-1][0]
    for layer, kind, mean_abs, _, rel in last.iter_rows():
        if kind == "bias":
            assert rel is None, "biases start at 0"
            continue
        w0, w = snapshot(synthetic_run, 0, layer), snapshot(synthetic_run, epochs, layer)
        assert abs(rel - np.linalg.norm(w - w0) / np.linalg.norm(w0)) <= 1e-6 * rel, (layer, rel)
        assert abs(mean_abs - np.abs(w - w0).mean()) <= 1e-6 * mean_abs, (layer, mean_abs)
    assert "rel_change" in printed

    # DuckDB: the stable rank and top-10 share of ΔW per layer at the last snapshot, from NumPy's
    # singular values of the two snapshots.
    assert [layer for layer, _, _ in names["ranks"]] == [1, 2, 3]
    for layer, rank, top10 in names["ranks"]:
        sigma = np.linalg.svd(snapshot(synthetic_run, epochs, layer) - snapshot(synthetic_run, 0, layer), compute_uv=False)
        energy = np.sum(sigma ** 2)
        assert abs(rank - energy / sigma[0] ** 2) <= 1e-6 * rank, (layer, rank)
        assert abs(top10 - np.sum(sigma[:10] ** 2) / energy) <= 1e-6, (layer, top10)
