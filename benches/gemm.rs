//! Every GEMM call of one training step (batch 128, input 784, 10 classes) at W ∈ {128, 512,
//! 1000}: drift's kernel against matrixmultiply on the same shapes, at 1 and 2 threads.
//! Throughput is in FLOPs (2·m·n·k per call), so criterion reports GFLOP/s as Gelem/s.
//!
//! With `DRIFT_BENCH_INTERLEAVED=FILE` (set by `make bench`) every case is then also timed with
//! the two kernels alternating ([`interleaved_best`]), one JSON line per case and thread count
//! appended to FILE: the ratio the summary's verdicts use, robust to the machine's phases.

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use drift_benches::{gemm_cases, interleaved_best, pool, quick, quick_config, Operands};
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

/// Each case with drift and matrixmultiply alternating in blocks of 5 ms (20 rounds quick, 50
/// otherwise), at 1 and 2 threads: best seconds per call of each, as JSON lines.
fn interleaved(path: &str) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let rounds = if quick() { 20 } else { 50 };
    for case in gemm_cases() {
        let mut ops = Operands::new(&case);
        for threads in [1usize, 2] {
            let pool = pool(threads);
            let (drift, mm) = pool.install(|| {
                let ops = std::cell::RefCell::new(&mut ops);
                interleaved_best(
                    rounds,
                    Duration::from_millis(5),
                    || ops.borrow_mut().run(Kernel::Auto),
                    || ops.borrow_mut().run(Kernel::MatrixMultiply),
                )
            });
            writeln!(
                out,
                r#"{{"case": "{}", "threads": {threads}, "flops": {}, "drift_seconds": {drift:e}, "matrixmultiply_seconds": {mm:e}}}"#,
                case.id(),
                case.flops()
            )?;
        }
    }
    Ok(())
}

criterion_group! { name = benches; config = quick_config(); targets = gemm }

fn main() {
    benches();
    if let Some(path) = std::env::var_os("DRIFT_BENCH_INTERLEAVED") {
        let path = path.to_string_lossy().into_owned();
        if let Err(e) = interleaved(&path) {
            eprintln!("gemm bench: cannot write {path}: {e}");
            std::process::exit(2);
        }
        println!("interleaved drift/matrixmultiply timings appended to {path}");
    }
    Criterion::default().configure_from_args().final_summary();
}
