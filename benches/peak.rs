//! The peak probe as a criterion benchmark: f32 FMA throughput with independent chains.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drift_benches::peak::{fma_chains, Isa, ITERATIONS};

fn peak(c: &mut Criterion) {
    let mut group = c.benchmark_group("peak");
    for isa in [Isa::Avx512, Isa::Avx2] {
        if !isa.available() {
            eprintln!("SKIPPED: peak probe {isa:?}: not supported by this CPU");
            continue;
        }
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(isa.flops(ITERATIONS) * threads as u64));
            group.bench_function(format!("{}/threads={threads}", isa.name()), |b| {
                b.iter(|| fma_chains(isa, threads));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, peak);
criterion_main!(benches);
