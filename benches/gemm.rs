//! Every GEMM call of one training step (batch 128, input 784, 10 classes) at W ∈ {128, 512,
//! 1000}: drift's kernel against matrixmultiply on the same shapes, at 1 and 2 threads.
//! Throughput is in FLOPs (2·m·n·k per call), so criterion reports GFLOP/s as Gelem/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drift_benches::{gemm_cases, pool, quick_config, Operands};
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

criterion_group! { name = benches; config = quick_config(); targets = gemm }
criterion_main!(benches);
