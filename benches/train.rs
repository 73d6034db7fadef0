//! One training step and one epoch of 60 000 samples at W ∈ {128, 512, 1000} (batch 128, two
//! hidden layers, keras-clipped loss, synthetic MNIST-shaped data), with drift's kernels and
//! with matrixmultiply (quick runs: matrixmultiply's epoch at W = 512 only); the SGD step fused
//! into the weight-gradient products against the gradients followed by a separate SGD pass; and,
//! at W = 512, the per-epoch statistics and a snapshot epoch of the analysis observer, and the
//! spectrum work of one snapshot (the singular values of ΔW and W of every layer), to be read as
//! shares of the epoch.
//!
//! With `DRIFT_BENCH_INTERLEAVED=FILE` (set by `make bench`) each width's epoch is also timed in
//! turns with the 2-thread peak probe, before and after criterion's measurements, one JSON line
//! per width appended to FILE: the epoch's share of the machine's FMA rate in the same phases,
//! which the summary's epoch targets use.

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use drift_analysis::spectrum::spectrum_rows;
use drift_analysis::{initial_spectra, RunMeta, RunWriter, SnapshotSchedule, DEFAULT_BINS};
use drift_benches::peak::{fma_chains, Isa, ITERATIONS};
use drift_benches::{
    interleaved_best, main_with_interleaved, pool, quick, quick_config, train_flops_per_sample, BATCH, CLASSES, INPUT,
    WIDTHS,
};
use drift_data::{epoch_order, DatasetSpec, LoadOptions};
use drift_kernels::Kernel;
use drift_train::{EpochRecord, Init, LossMode, Observer, Params, TrainConfig, Workspace};
use rayon::prelude::*;

/// FLOPs of one step of batch `rows` of the benchmarked network of `width`.
fn step_flops(width: usize, rows: usize) -> u64 {
    rows as u64 * train_flops_per_sample(&Params::sizes(INPUT, width, 2, CLASSES))
}

/// One epoch: every batch of `order` loaded and trained on with SGD.
fn train_epoch(ws: &mut Workspace, params: &mut Params, split: &drift_data::Split, order: &[u32]) {
    for batch in order.chunks(BATCH) {
        ws.load_batch(split, batch);
        ws.train_step(params, batch.len(), LossMode::KerasClipped, 0.01);
    }
}

fn train(c: &mut Criterion) {
    let data = drift_data::load(&DatasetSpec::Synthetic, &LoadOptions::new(0)).expect("synthetic data");
    let n = data.train.len();
    let order = epoch_order(n, 0, 1);
    let pool = pool(2);
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    for width in WIDTHS {
        let sizes = Params::sizes(INPUT, width, 2, CLASSES);
        for kernel in [Kernel::Auto, Kernel::MatrixMultiply] {
            let name = if kernel == Kernel::Auto { "drift" } else { "matrixmultiply" };
            let mut params = Params::init(&sizes, 0, Init::GlorotUniform, None);
            let mut ws = Workspace::new(&sizes, BATCH, kernel);
            group.throughput(Throughput::Elements(step_flops(width, BATCH)));
            group.bench_function(format!("step/W{width}/{name}/threads=2"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        ws.load_batch(&data.train, &order[..BATCH]);
                        ws.train_step(&mut params, BATCH, LossMode::KerasClipped, 0.01);
                    })
                })
            });
            // matrixmultiply's epochs take 0.4-6 s each and criterion samples ten; quick runs
            // keep only W = 512's, which the summary compares.
            if quick() && kernel == Kernel::MatrixMultiply && width != 512 {
                continue;
            }
            let flops: u64 = order.chunks(BATCH).map(|b| step_flops(width, b.len())).sum();
            group.throughput(Throughput::Elements(flops));
            group.bench_function(format!("epoch/W{width}/{name}/threads=2"), |b| {
                pool.install(|| b.iter(|| train_epoch(&mut ws, &mut params, &data.train, &order)))
            });
        }
    }
    group.finish();

    // The SGD step fused into the weight-gradient products (what training runs) against the
    // gradients stored and then applied by a separate pass: the same bits, different traffic.
    // Each iteration takes the next batch of the epoch, so operands come from memory as in
    // training.
    let mut group = c.benchmark_group("sgd");
    group.sample_size(10);
    let batches: Vec<&[u32]> = order.chunks(BATCH).collect();
    for width in WIDTHS {
        let sizes = Params::sizes(INPUT, width, 2, CLASSES);
        group.throughput(Throughput::Elements(step_flops(width, BATCH)));
        for fused in [true, false] {
            let mut params = Params::init(&sizes, 0, Init::GlorotUniform, None);
            let mut ws = Workspace::new(&sizes, BATCH, Kernel::Auto);
            let mut next = batches.iter().cycle();
            let name = if fused { "fused" } else { "separate" };
            group.bench_function(format!("W{width}/{name}/threads=2"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        let batch = next.next().expect("cycle");
                        ws.load_batch(&data.train, batch);
                        if fused {
                            ws.train_step(&mut params, batch.len(), LossMode::KerasClipped, 0.01);
                        } else {
                            ws.gradients(&params, batch.len(), LossMode::KerasClipped);
                            ws.apply_sgd(&mut params, 0.01);
                        }
                    })
                })
            });
        }
    }
    group.finish();

    // The analysis observer at W = 512: an ordinary epoch (statistics only), a snapshot epoch of
    // a run that has written a snapshot before (as every snapshot but a run's first), and a
    // run's first snapshot, which also encodes the snapshots' index columns once.
    let sizes = Params::sizes(INPUT, 512, 2, CLASSES);
    let init = Params::init(&sizes, 0, Init::GlorotUniform, None);
    let mut current = init.clone();
    current.layers.iter_mut().for_each(|l| l.w.iter_mut().for_each(|w| *w *= 1.01));
    // A fresh writer per iteration, so the tables it rewrites stay one or two epochs long.
    let dir = tempfile::tempdir().expect("temporary folder");
    let schedule: SnapshotSchedule = "every:2".parse().expect("schedule");
    let record =
        |epoch| EpochRecord { epoch, train_loss: 1.0, train_acc: 0.5, test_loss: 1.0, test_acc: 0.5, seconds: 1.0 };
    let writer = |snapshots_before: bool| {
        let config = TrainConfig { dataset: "synthetic".into(), width: 512, epochs: 1000, ..TrainConfig::default() };
        let meta = RunMeta::new(&config, &data, n, "");
        let mut w = RunWriter::create(&drift_analysis::RunDir::new(dir.path()), meta, schedule.clone(), DEFAULT_BINS)
            .expect("run writer");
        if snapshots_before {
            w.epoch(&record(2), &init, &current).expect("analysis epoch");
        }
        w
    };
    let mut group = c.benchmark_group("analysis");
    group.sample_size(10);
    let cases =
        [("statistics/W512", 1u32, false), ("statistics+snapshot/W512", 4, true), ("first-snapshot/W512", 2, false)];
    for (what, epoch, snapshots_before) in cases {
        group.bench_function(what, |b| {
            pool.install(|| {
                b.iter_batched(
                    || writer(snapshots_before),
                    |mut w| w.epoch(&record(epoch), &init, &current).expect("analysis epoch"),
                    BatchSize::PerIteration,
                )
            })
        });
    }
    // What a snapshot adds for spectrum.parquet: ΔW and W of each layer (W0's values are
    // computed once per run), the layers in parallel as the observer runs them.
    let w0_spectra = initial_spectra(&init);
    group.bench_function("spectrum/W512", |b| {
        pool.install(|| {
            b.iter(|| {
                let layers = init.layers.par_iter().zip(&current.layers).zip(&w0_spectra).enumerate();
                layers.map(|(l, ((i, c), w0))| spectrum_rows(4, l as i32 + 1, i, c, w0.as_deref())).collect::<Vec<_>>()
            })
        })
    });
    group.finish();
}

/// One epoch of 60 000 samples at each width (drift's kernels, 2 threads) and the 2-thread peak
/// probe, timed in turns (blocks of 250 ms, so an epoch is one call; 3 rounds quick, 5
/// otherwise): best seconds of an epoch and best probe rate (GFLOP/s) per width.
fn interleaved_epochs() -> Vec<(usize, u64, f64, f64)> {
    let data = drift_data::load(&DatasetSpec::Synthetic, &LoadOptions::new(0)).expect("synthetic data");
    let order = epoch_order(data.train.len(), 0, 1);
    let isa = [Isa::Avx512, Isa::Avx2].into_iter().find(|isa| isa.available());
    let rounds = if quick() { 3 } else { 5 };
    let pool = pool(2);
    let mut rows = Vec::new();
    for width in WIDTHS {
        let sizes = Params::sizes(INPUT, width, 2, CLASSES);
        let mut params = Params::init(&sizes, 0, Init::GlorotUniform, None);
        let mut ws = Workspace::new(&sizes, BATCH, Kernel::Auto);
        let flops: u64 = order.chunks(BATCH).map(|b| step_flops(width, b.len())).sum();
        let best = pool.install(|| {
            let mut epoch = || train_epoch(&mut ws, &mut params, &data.train, &order);
            let mut probe = || {
                if let Some(isa) = isa {
                    std::hint::black_box(fma_chains(isa, 2));
                }
            };
            interleaved_best(rounds, Duration::from_millis(250), &mut [&mut epoch, &mut probe])
        });
        let peak = isa.map_or(0.0, |isa| (isa.flops(ITERATIONS) * 2) as f64 / best[1] / 1e9);
        rows.push((width, flops, best[0], peak));
    }
    rows
}

/// Appends the best of two interleaved passes, one JSON line per width, to `path`.
fn write_interleaved(
    path: &str,
    first: &[(usize, u64, f64, f64)],
    second: &[(usize, u64, f64, f64)],
) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    for (&(width, flops, a, peak_a), &(_, _, b, peak_b)) in first.iter().zip(second) {
        writeln!(
            out,
            r#"{{"case": "epoch_W{width}", "threads": 2, "flops": {flops}, "drift_seconds": {:e}, "peak_gflops": {:.1}}}"#,
            a.min(b),
            peak_a.max(peak_b)
        )?;
    }
    Ok(())
}

criterion_group! { name = benches; config = quick_config(); targets = train }

/// As the GEMM bench: the best epochs of two passes in turns, before and after criterion's.
fn main() {
    main_with_interleaved("train", benches, interleaved_epochs, write_interleaved);
}
