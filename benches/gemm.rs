//! Every GEMM call of one training step (batch 128, input 784, 10 classes) at W ∈ {128, 512,
//! 1000}: drift's kernel against matrixmultiply on the same shapes, at 1 and 2 threads.
//! Throughput is in FLOPs (2·m·n·k per call), so criterion reports GFLOP/s as Gelem/s.
//!
//! With `DRIFT_BENCH_INTERLEAVED=FILE` (set by `make bench`) every case is also timed with the
//! two kernels and the peak probe taking turns ([`interleaved_best`]), before and after
//! criterion's measurements, one JSON line per case and thread count appended to FILE: the
//! ratios the summary's verdicts use, every number measured in the same phases of the machine.

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use drift_benches::peak::{fma_chains, Isa, ITERATIONS};
use drift_benches::{gemm_cases, interleaved_best, main_with_interleaved, pool, quick, quick_config, Operands};
use drift_kernels::Kernel;

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for case in gemm_cases() {
        let mut ops = Operands::new(&case);
        group.throughput(Throughput::Elements(case.flops()));
        for threads in [1usize, 2] {
            let pool = pool(threads);
            for kernel in [Kernel::Auto, Kernel::MatrixMultiply] {
                let impl_name = if kernel == Kernel::Auto { "drift" } else { "matrixmultiply" };
                group.bench_function(format!("{}/{impl_name}/threads={threads}", case.id()), |b| {
                    pool.install(|| b.iter(|| ops.run(kernel)));
                });
            }
        }
    }
    group.finish();
}

/// One case at one thread count, timed in turns: best seconds per call of drift and of
/// matrixmultiply, and the best FMA rate of the peak probe measured between them (GFLOP/s).
struct Interleaved {
    case: String,
    threads: usize,
    flops: u64,
    drift: f64,
    matrixmultiply: f64,
    peak: f64,
}

/// Every case at 1 and 2 threads with drift, matrixmultiply and the peak probe taking turns in
/// blocks of about 5 ms (15 rounds quick, 40 otherwise): the probe says what share of the
/// machine's FMA rate drift reached in the same phases.
fn interleaved() -> Vec<Interleaved> {
    let rounds = if quick() { 15 } else { 40 };
    let isa = [Isa::Avx512, Isa::Avx2].into_iter().find(|isa| isa.available());
    let mut rows = Vec::new();
    for case in gemm_cases() {
        let mut ops = Operands::new(&case);
        for threads in [1usize, 2] {
            let best = pool(threads).install(|| {
                let ops = std::cell::RefCell::new(&mut ops);
                let mut drift = || ops.borrow_mut().run(Kernel::Auto);
                let mut mm = || ops.borrow_mut().run(Kernel::MatrixMultiply);
                let mut probe = || {
                    if let Some(isa) = isa {
                        std::hint::black_box(fma_chains(isa, threads));
                    }
                };
                interleaved_best(rounds, Duration::from_millis(5), &mut [&mut drift, &mut mm, &mut probe])
            });
            let peak = isa.map_or(0.0, |isa| (isa.flops(ITERATIONS) * threads as u64) as f64 / best[2] / 1e9);
            rows.push(Interleaved {
                case: case.id(),
                threads,
                flops: case.flops(),
                drift: best[0],
                matrixmultiply: best[1],
                peak,
            });
        }
    }
    rows
}

/// Appends the best of two interleaved passes, one JSON line per case and thread count, to `path`.
fn write_interleaved(path: &str, first: &[Interleaved], second: &[Interleaved]) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    for (a, b) in first.iter().zip(second) {
        writeln!(
            out,
            r#"{{"case": "{}", "threads": {}, "flops": {}, "drift_seconds": {:e}, "matrixmultiply_seconds": {:e}, "peak_gflops": {:.1}}}"#,
            a.case,
            a.threads,
            a.flops,
            a.drift.min(b.drift),
            a.matrixmultiply.min(b.matrixmultiply),
            a.peak.max(b.peak)
        )?;
    }
    Ok(())
}

criterion_group! { name = benches; config = quick_config(); targets = gemm }

/// The best blocks of two passes in turns, before and after criterion's measurements.
fn main() {
    main_with_interleaved("gemm", benches, interleaved, write_interleaved);
}
