"""drift against an independent NumPy re-implementation: same initial weights (read from the
epoch-0 snapshot), same full-batch steps, in float64. Weights and losses must agree to 1e-4
relative after 24 steps, in both loss modes and with each optimiser (Keras's SGD, SGD with
momentum, Adam). And the He-normal and LeCun-normal initial weights against the truncated normal
they are drawn from."""
import math

import numpy as np
import polars as pl
import pytest

from conftest import make_idx_dataset, run_drift

EPS = 1e-7
STEPS, WIDTH, DEPTH = 24, 24, 2
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


class Sgd:
    def __init__(self, lr):
        self.lr = lr

    def update(self, i, param, grad):
        param -= self.lr * grad


class Momentum:
    """Keras SGD(momentum=MU), Nesterov off: v = MU·v − lr·g; w = w + v."""
    MU = 0.9

    def __init__(self, lr):
        self.lr, self.velocity = lr, {}

    def update(self, i, param, grad):
        v = self.velocity.setdefault(i, np.zeros_like(param))
        v *= self.MU
        v -= self.lr * grad
        param += v


class Adam:
    """Keras 2 Adam: lr_t = lr·sqrt(1 − β2^t)/(1 − β1^t); w = w − lr_t·m/(sqrt(v) + ε)."""
    BETA1, BETA2, EPS = 0.9, 0.999, 1e-7

    def __init__(self, lr):
        self.lr, self.moments, self.t = lr, {}, 0

    def start_step(self):
        self.t += 1
        self.rate = self.lr * math.sqrt(1 - self.BETA2 ** self.t) / (1 - self.BETA1 ** self.t)

    def update(self, i, param, grad):
        m, v = self.moments.setdefault(i, (np.zeros_like(param), np.zeros_like(param)))
        m[...] = self.BETA1 * m + (1 - self.BETA1) * grad
        v[...] = self.BETA2 * v + (1 - self.BETA2) * grad ** 2
        param -= self.rate * m / (np.sqrt(v) + self.EPS)


OPTIMIZERS = {"sgd": (Sgd, 0.1), "momentum": (Momentum, 0.05), "adam": (Adam, 0.005)}


def step(layers, x, y, mode, optimizer):
    acts = forward(layers, x)
    loss, acc, dz = loss_and_grad(acts[-1], y, mode)
    grads = []
    for i in reversed(range(len(layers))):
        W, _ = layers[i]
        grads.append((dz.T @ acts[i], dz.sum(axis=0)))
        if i > 0:
            dz = (dz @ W) * (acts[i] > 0)
    if hasattr(optimizer, "start_step"):
        optimizer.start_step()
    for i, ((W, B), (dW, dB)) in enumerate(zip(layers, reversed(grads))):
        optimizer.update(2 * i, W, dW)
        optimizer.update(2 * i + 1, B, dB)
    return loss, acc


@pytest.mark.parametrize("mode,optimizer", [("keras-clipped", "sgd"), ("logits", "sgd"),
                                            ("keras-clipped", "momentum"), ("logits", "adam")])
def test_numpy_replay_matches_drift(tmp_path, cache_dir, mode, optimizer):
    make_optimizer, lr = OPTIMIZERS[optimizer]
    data = make_idx_dataset(tmp_path / "data", N_TRAIN, N_TEST, SIDE, CLASSES, seed=11)
    out = tmp_path / "run"
    run_drift("train", "--dataset", f"idx:{data}", "--width", WIDTH, "--depth", DEPTH, "--epochs", STEPS,
              "--batch", N_TRAIN, "--lr", lr, "--loss", mode, "--seed", 5, "--snapshots", f"0,{STEPS}",
              "--optimizer", optimizer, "--threads", 1, "--out", out, env={"DRIFT_CACHE": str(cache_dir)})
    opt = make_optimizer(lr)

    x = read_idx(data / "train-images-idx3-ubyte").reshape(N_TRAIN, -1).astype(np.float32) / np.float32(255)
    x = x.astype(np.float64)
    y = read_idx(data / "train-labels-idx1-ubyte").astype(np.int64)
    xt = read_idx(data / "t10k-images-idx3-ubyte").reshape(N_TEST, -1).astype(np.float32) / np.float32(255)
    xt = xt.astype(np.float64)
    yt = read_idx(data / "t10k-labels-idx1-ubyte").astype(np.int64)

    # runs.parquet names the optimiser and exactly the hyper-parameters it has (the defaults).
    run = pl.read_parquet(out / "runs.parquet").row(0, named=True)
    want = {"sgd": {}, "momentum": {"momentum": 0.9}, "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-7}}[optimizer]
    assert run["optimizer"] == optimizer
    assert {k: run[k] for k in ("momentum", "beta1", "beta2", "eps") if run[k] is not None} == want

    layers = load_params(out / "snapshots" / "epoch=000000.parquet")
    history = pl.read_parquet(out / "history.parquet").sort("epoch")
    test0, _, _ = loss_and_grad(forward(layers, xt)[-1], yt, mode)
    np.testing.assert_allclose(history["test_loss"][0], test0, rtol=1e-4)
    train_losses, test_losses = [], []
    for _ in range(STEPS):
        loss, _ = step(layers, x, y, mode, opt)  # full batch: the epoch's loss is this step's loss
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


def truncated_normal_std(sigma):
    """Standard deviation of N(0, σ²) truncated to [−2σ, 2σ]: σ·sqrt(1 − 2·φ(2)·2/(2Φ(2) − 1))."""
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    return sigma * math.sqrt(1 - 4 * phi2 / mass)


@pytest.mark.parametrize("init,scale", [("he-normal", 2.0), ("lecun-normal", 1.0)])
def test_truncated_normal_init(tmp_path, cache_dir, init, scale):
    side, width = 20, 400  # 400 inputs: enough weights per layer for a tight check of the std
    data = make_idx_dataset(tmp_path / "data", 100, 20, side, CLASSES, seed=3)
    out = tmp_path / "run"
    run_drift("train", "--dataset", f"idx:{data}", "--width", width, "--depth", DEPTH, "--epochs", 1,
              "--batch", 100, "--init", init, "--seed", 2, "--snapshots", "0", "--threads", 1, "--out", out,
              env={"DRIFT_CACHE": str(cache_dir)})
    runs = pl.read_parquet(out / "runs.parquet")
    assert runs["init"][0] == init and runs["optimizer"][0] == "sgd"
    frame = pl.read_parquet(out / "snapshots" / "epoch=000000.parquet")
    fans = [side * side] + [width] * DEPTH
    for layer, fan_in in enumerate(fans, start=1):
        w = frame.filter((pl.col("layer") == layer) & (pl.col("kind") == "weight"))["w"].to_numpy().astype(np.float64)
        b = frame.filter((pl.col("layer") == layer) & (pl.col("kind") == "bias"))["w"].to_numpy()
        assert (b == 0).all(), f"layer {layer}: biases start at 0"
        target = math.sqrt(scale / fan_in)              # the std Keras promises
        sigma = target / 0.87962566103423978             # the normal's scale before truncation
        assert abs(truncated_normal_std(sigma) - target) < 1e-8 * target, "Keras's constant"
        assert np.abs(w).max() <= 2 * sigma * (1 + 1e-7), f"layer {layer}: a weight beyond 2σ"
        assert np.abs(w).max() > 1.9 * sigma, f"layer {layer}: the tails reach close to 2σ"
        n = len(w)
        # Sampling error of the std is about std/sqrt(2n); allow 5 of those (and 5 standard errors of the mean).
        assert abs(w.mean()) < 5 * target / math.sqrt(n), (layer, w.mean())
        assert abs(w.std() - target) < 5 * target / math.sqrt(2 * n) + 1e-3 * target, (layer, w.std(), target)
