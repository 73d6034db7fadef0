//! Known answers for whole runs: the SHA-256 of the final parameters and of the per-epoch losses
//! of one tiny run for each arithmetic class (the blocked FMA kernels, the portable kernel,
//! matrixmultiply).
//!
//! Every other determinism test compares the build with itself; these compare it with fixed
//! values, so that a change in a dependency (`rand_xoshiro`, matrixmultiply), in drift's `exp`
//! or `ln`, in a kernel's order of operations or in the synthetic generator fails here instead of
//! silently changing results under the same run ids. A deliberate change updates these values
//! and `drift_train::FORMAT_VERSION` in the same commit.

use drift_data::{synthetic::SyntheticConfig, DatasetSpec, LoadOptions};
use drift_kernels::Kernel;
use drift_train::{train, History, LossMode, RunStatus, TrainConfig};
use sha2::{Digest, Sha256};

/// A run small enough for a debug build, with every awkward edge: a width that is no multiple of
/// any register tile, a partial last batch, two hidden layers, both loss modes.
fn tiny_run(kernel: Kernel, loss: LossMode) -> History {
    let mut opts = LoadOptions::new(5);
    opts.synthetic = SyntheticConfig { train: 300, test: 100, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).expect("synthetic data");
    let config = TrainConfig {
        dataset: "synthetic".into(),
        width: 37,
        depth: 2,
        epochs: 3,
        seed: 5,
        lr: 0.05,
        batch_size: 64,
        loss,
        kernel,
        threads: 1,
        ..TrainConfig::default()
    };
    let mut history = History::default();
    let summary = train(&config, &data, &mut history).expect("training runs");
    assert_eq!(summary.status, RunStatus::Completed);
    history
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// (SHA-256 of every weight then bias of every layer as f32 LE bits, SHA-256 of every epoch's
/// train and test loss as f64 LE bits and its two accuracies).
fn digests(h: &History) -> (String, String) {
    let mut params = Sha256::new();
    for layer in &h.final_params.as_ref().expect("final parameters").layers {
        for v in layer.w.iter().chain(&layer.b) {
            params.update(v.to_bits().to_le_bytes());
        }
    }
    let mut losses = Sha256::new();
    for r in &h.records {
        for v in [r.train_loss, r.test_loss, r.train_acc, r.test_acc] {
            losses.update(v.to_bits().to_le_bytes());
        }
    }
    (hex(&params.finalize()), hex(&losses.finalize()))
}

/// The known digests of one kernel: (parameters, losses) in `keras-clipped` and `logits` mode.
fn check(kernel: Kernel, want: [(&str, &str); 2]) {
    let got = [LossMode::KerasClipped, LossMode::Logits].map(|loss| digests(&tiny_run(kernel, loss)));
    let want = want.map(|(params, losses)| (params.to_string(), losses.to_string()));
    assert_eq!(got, want, "{kernel}: (parameters, losses) in both loss modes");
}

/// The blocked FMA kernels: AVX-512 and AVX2 give the same bits, so they share one answer.
const FMA: [(&str, &str); 2] = [
    (
        "06663de67ed059a91fa6cc3a40e8b3d5c3b46d45e893b75b56d8205ff84514e8",
        "8268ab5b1ecbf71dc1904f960cb60f59d163d793aeb60ca9b95c5de305401d53",
    ),
    (
        "06663de67ed059a91fa6cc3a40e8b3d5c3b46d45e893b75b56d8205ff84514e8",
        "0bbb10a5ae9c0c0acbfdca8c880074b57450bd1e9b5e5093fdc86fba9b02b3a2",
    ),
];

#[test]
fn avx512_kernel_gives_the_known_fma_digests() {
    if !Kernel::Avx512.supported() {
        return drift_skip::skip("avx512", "this CPU has no AVX-512F for the golden run of the avx512 kernel");
    }
    check(Kernel::Avx512, FMA);
}

#[test]
fn avx2_kernel_gives_the_known_fma_digests() {
    if !Kernel::Avx2.supported() {
        return drift_skip::skip("avx2", "this CPU has no AVX2 and FMA for the golden run of the avx2 kernel");
    }
    check(Kernel::Avx2, FMA);
}

const PORTABLE: [(&str, &str); 2] = [
    (
        "e57ada0b8798ab4f5fffeb4a742873374683749fea0b0ddcae55f9d513f9994e",
        "480a9fec985886ce5f12cf28fbf3db3321d115eda3012bd49676a44e2e48b0b7",
    ),
    (
        "e57ada0b8798ab4f5fffeb4a742873374683749fea0b0ddcae55f9d513f9994e",
        "e6cc6429c06c0690c9afd6f165c967094435ef987f1221393d2ffcc97119bc3d",
    ),
];

/// The portable kernel rounds each product and sum separately (no FMA), so these are its bits on
/// every CPU.
#[test]
fn portable_kernel_gives_its_known_digests() {
    check(Kernel::Portable, PORTABLE);
}

const MATRIXMULTIPLY: [(&str, &str); 2] = [
    (
        "1146e572ee175361386c792c4eb158e03089094c10217c843469e06dc436d3da",
        "96dea2f6b5001cbeef3c12238cb4f4e8b6cdc44d1b182eb86dfccc3d1b008d69",
    ),
    (
        "1146e572ee175361386c792c4eb158e03089094c10217c843469e06dc436d3da",
        "0d904a09e0d6fdc5201de2eead6d4e56632f972f4db8d0f29ec639a4dcdf2ffe",
    ),
];

/// matrixmultiply picks its own kernel at run time; these are the digests of its FMA kernel
/// (x86-64 with AVX2 and FMA), the one every supported x86 machine takes; elsewhere the test is
/// skipped.
#[test]
fn matrixmultiply_gives_its_known_digests() {
    if !Kernel::Avx2.supported() {
        return drift_skip::skip("avx2", "matrixmultiply's FMA kernel needs AVX2 and FMA for its golden run");
    }
    check(Kernel::MatrixMultiply, MATRIXMULTIPLY);
}
