//! [`team`]: products run on a team of the pool's threads give the bits of one thread, and the
//! team survives what its caller may do inside it (other rayon work, a nested team, a panic).

mod common;
use common::{blocked_kernels, data};

use drift_kernels::blocked::gemm_blocked;
use drift_kernels::{relu_backward, team, Kernel, MatMut, MatRef};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool")
}

/// A chain of products like a training step's, small and large (serial, few-task and many-task
/// products), each reading the previous one's output: every output, in order.
fn chain(kernel: Kernel) -> Vec<Vec<f32>> {
    let shapes = [(128, 784, 300), (128, 300, 300), (128, 300, 10), (128, 10, 300), (300, 128, 300), (10, 128, 30)];
    let mut x = data(128 * 784, 1);
    let mut outputs = Vec::new();
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        let a = if x.len() == m * k { x.clone() } else { data(m * k, 10 + s as u64) };
        let b = data(k * n, 20 + s as u64);
        let mut c = vec![f32::NAN; m * n];
        gemm_blocked(kernel, MatRef::new(&a, m, k), MatRef::new(&b, k, n), MatMut::new(&mut c, m, n), false);
        x.clone_from(&c);
        outputs.push(c);
    }
    outputs
}

fn bits(outputs: &[Vec<f32>]) -> Vec<u32> {
    outputs.iter().flatten().map(|x| x.to_bits()).collect()
}

#[test]
fn a_chain_of_products_on_a_team_has_the_bits_of_one_thread() {
    for kernel in blocked_kernels() {
        let one = bits(&pool(1).install(|| chain(kernel)));
        for threads in [1, 2, 3, 4] {
            // Several chains on one team, as a training step runs its products.
            let (first, second) = pool(threads).install(|| team(|| (chain(kernel), chain(kernel))));
            assert!(bits(&first) == one && bits(&second) == one, "{kernel}: a team of {threads} threads differs");
        }
    }
}

#[test]
fn rayon_work_and_a_nested_team_inside_a_team_complete() {
    let kernel = blocked_kernels()[0];
    let one = bits(&pool(1).install(|| chain(kernel)));
    let (mut grad, act) = (data(1 << 20, 3), data(1 << 20, 4));
    let mut want = grad.clone();
    relu_backward(&mut want, &act);
    let nested = pool(2).install(|| {
        team(|| {
            // A parallel element-wise pass (rayon inside the team) between two products.
            let before = chain(kernel);
            relu_backward(&mut grad, &act);
            let inner = team(|| chain(kernel));
            (before, inner)
        })
    });
    assert!(bits(&nested.0) == one && bits(&nested.1) == one, "products around rayon work or in a nested team differ");
    assert!(grad.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "relu_backward inside a team differs");
}

#[test]
fn a_panic_inside_a_team_propagates_and_the_pool_stays_usable() {
    let kernel = blocked_kernels()[0];
    let one = bits(&pool(1).install(|| chain(kernel)));
    let pool = pool(2);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| {
            team(|| {
                chain(kernel);
                panic!("the leader's work fails");
            })
        })
    }));
    assert!(caught.is_err(), "the panic did not reach the caller");
    // The helpers left with the team: the pool runs products, on a new team and without one.
    assert!(bits(&pool.install(|| team(|| chain(kernel)))) == one);
    assert!(bits(&pool.install(|| chain(kernel))) == one);
}
