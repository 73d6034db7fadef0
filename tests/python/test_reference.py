"""drift against an independent NumPy re-implementation: same initial weights (read from the
epoch-0 snapshot), same full-batch steps, in float64. Weights and losses must agree to 1e-4
relative after 24 steps, in both loss modes."""
import numpy as np
import polars as pl
import pytest

from conftest import make_idx_dataset, run_drift

EPS = 1e-7
STEPS, WIDTH, DEPTH, LR = 24, 24, 2, 0.1
N_TRAIN, N_TEST, SIDE, CLASSES = 200, 60, 8, 4


def read_idx(path):
    raw = path.read_bytes()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4")
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def load_params(snapshot):
    frame = pl.read_parquet(snapshot)
    layers = []
    for layer in range(1, DEPTH + 2):
        w = frame.filter((pl.col("layer") == layer) & (pl.col("kind") == "weight"))
        b = frame.filter((pl.col("layer") == layer) & (pl.col("kind") == "bias"))
        rows, cols = w["row"].max() + 1, w["col"].max() + 1
        W = np.zeros((rows, cols))
        W[w["row"].to_numpy(), w["col"].to_numpy()] = w["w"].to_numpy().astype(np.float64)
        B = np.zeros(rows)
        B[b["row"].to_numpy()] = b["w"].to_numpy().astype(np.float64)
        layers.append([W, B])
    return layers


def forward(layers, x):
    acts = [x]
    for i, (W, B) in enumerate(layers):
        z = acts[-1] @ W.T + B
        acts.append(np.maximum(z, 0.0) if i + 1 < len(layers) else z)
    return acts


def loss_and_grad(logits, y, mode):
    """Mean loss and its gradient w.r.t. the logits (Keras clip: zero gradient where clipped)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(y)
    py = p[np.arange(n), y]
    onehot = np.eye(logits.shape[1])[y]
    if mode == "logits":
        losses = np.log(np.exp(z).sum(axis=1)) - z[np.arange(n), y]
        live = np.ones(n, dtype=bool)
    else:
        losses = -np.log(np.clip(py, EPS, 1 - EPS))
        live = (py >= EPS) & (py <= 1 - EPS)
    grad = (p - onehot) * live[:, None] / n
    return losses.mean(), (p.argmax(axis=1) == y).mean(), grad


def step(layers, x, y, mode):
    acts = forward(layers, x)
    loss, acc, dz = loss_and_grad(acts[-1], y, mode)
    grads = []
    for i in reversed(range(len(layers))):
        W, _ = layers[i]
        grads.append((dz.T @ acts[i], dz.sum(axis=0)))
        if i > 0:
            dz = (dz @ W) * (acts[i] > 0)
    for (W, B), (dW, dB) in zip(layers, reversed(grads)):
        W -= LR * dW
        B -= LR * dB
    return loss, acc


@pytest.mark.parametrize("mode", ["keras-clipped", "logits"])
def test_numpy_replay_matches_drift(tmp_path, cache_dir, mode):
    data = make_idx_dataset(tmp_path / "data", N_TRAIN, N_TEST, SIDE, CLASSES, seed=11)
    out = tmp_path / "run"
    run_drift("train", "--dataset", f"idx:{data}", "--width", WIDTH, "--depth", DEPTH, "--epochs", STEPS,
              "--batch", N_TRAIN, "--lr", LR, "--loss", mode, "--seed", 5, "--snapshots", f"0,{STEPS}",
              "--threads", 1, "--out", out, env={"DRIFT_CACHE": str(cache_dir)})

    x = read_idx(data / "train-images-idx3-ubyte").reshape(N_TRAIN, -1).astype(np.float32) / np.float32(255)
    x = x.astype(np.float64)
    y = read_idx(data / "train-labels-idx1-ubyte").astype(np.int64)
    xt = read_idx(data / "t10k-images-idx3-ubyte").reshape(N_TEST, -1).astype(np.float32) / np.float32(255)
    xt = xt.astype(np.float64)
    yt = read_idx(data / "t10k-labels-idx1-ubyte").astype(np.int64)

    layers = load_params(out / "snapshots" / "epoch=000000.parquet")
    history = pl.read_parquet(out / "history.parquet").sort("epoch")
    test0, _, _ = loss_and_grad(forward(layers, xt)[-1], yt, mode)
    np.testing.assert_allclose(history["test_loss"][0], test0, rtol=1e-4)
    train_losses, test_losses = [], []
    for _ in range(STEPS):
        loss, _ = step(layers, x, y, mode)  # full batch: the epoch's loss is this step's loss
        train_losses.append(loss)
        test_losses.append(loss_and_grad(forward(layers, xt)[-1], yt, mode)[0])
    np.testing.assert_allclose(history["train_loss"][1:].to_numpy(), train_losses, rtol=1e-4)
    np.testing.assert_allclose(history["test_loss"][1:].to_numpy(), test_losses, rtol=1e-4)
    assert train_losses[-1] < 0.8 * train_losses[0], "the replay must actually learn something"

    final = load_params(out / "snapshots" / f"epoch={STEPS:06d}.parquet")
    for (W, B), (Wd, Bd) in zip(layers, final):
        scale = np.abs(W).max()
        np.testing.assert_allclose(Wd, W, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(Bd, B, rtol=1e-4, atol=1e-4 * scale)
        assert np.abs(Wd - W).max() <= 1e-4 * scale
