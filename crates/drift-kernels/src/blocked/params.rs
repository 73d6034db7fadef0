//! Block sizes of the blocked GEMM, per instruction set, in one place.
//!
//! Tuned on the 2-vCPU AMD EPYC (Zen 4) this project trains on: L1d 32 KiB and L2 1 MiB per
//! core, L3 shared. Zen 4 executes a 512-bit FMA as two 256-bit halves, so one core peaks at
//! 32 f32 FLOP per cycle with AVX-512 *or* AVX2 (≈ 117 GFLOP/s measured at its clock).
//!
//! The driver (`driver.rs`) cuts `C = A·B` (`A: m×k`, `B: k×n`) in three ways:
//!
//! * `kc` cuts the reduction dimension `k` into `⌈k / kc⌉` blocks of equal length (784 → 2×392).
//!   A microkernel call streams an `MR × kc` A panel (packed or in place) and a packed `kc × NR`
//!   B panel; C is read and written once per block. **`kc` is the only block size that changes
//!   the result**: each element of C is the sum, block by block in order, of an FMA chain
//!   started from zero inside the block. The FMA instruction sets share one `kc` so that AVX2
//!   and AVX-512 give the same bits. 512 beat 128, 192, 256 and 384 on the training shapes (fewer passes over C; the
//!   64 KiB B micro-panel streams from L2 with the hardware prefetcher keeping up).
//! * `mc` caps the rows of a task's row block: its A block (`mc × kc`, 256 KiB for the AVX-512
//!   values, packed or in place) is re-read from L2 for every NR-column panel of the task.
//! * `nc` caps the columns of a task's column block: its packed B block (`kc × nc`) is touched
//!   once per `kc` block, panel by panel.
//!
//! The task grid (row blocks × column blocks) is then split further, from the shape only and
//! never from the number of threads, until there are `TARGET_TASKS` tasks or a task would fall
//! under `MIN_TASK_FMAS`.

/// Block sizes for one microkernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockSizes {
    /// Most rows of C per task (rounded down to a multiple of `MR`).
    pub mc: usize,
    /// Longest reduction block.
    pub kc: usize,
    /// Most columns of C per task (rounded down to a multiple of `NR`).
    pub nc: usize,
}

/// Shared by the FMA kernels (AVX-512 and AVX2) so that their results are bit-identical.
const FMA_KC: usize = 512;

/// AVX-512 (8×32 tile): A block 128×512×4 B = 256 KiB in L2, B block 512×256×4 B = 512 KiB.
pub(crate) const AVX512: BlockSizes = BlockSizes { mc: 128, kc: FMA_KC, nc: 256 };

/// AVX2+FMA (6×16 tile): A block 126×512×4 B ≈ 252 KiB in L2, B block 512×256×4 B = 512 KiB.
pub(crate) const AVX2: BlockSizes = BlockSizes { mc: 126, kc: FMA_KC, nc: 256 };

/// Portable (4×8 tile, no FMA): the same cuts; its results differ from the FMA kernels' anyway.
pub(crate) const PORTABLE: BlockSizes = BlockSizes { mc: 128, kc: 256, nc: 256 };

/// Split until this many tasks (a power of two, so 2 or 4 threads get equal shares). Eight, not
/// sixteen: the smaller tasks of sixteen each packed their own copy of blocks they shared (see
/// `PRIVATE_PACK_FLOATS`), and the 128³ products of W = 128 ran 15–19% slower for it (the W = 128
/// epoch 4.5–5%); the larger products are unchanged (measured in turns, 2 threads).
pub(crate) const TARGET_TASKS: usize = 8;

/// Do not split below this many multiply-adds per task (≈ 2 µs of one core at peak): smaller
/// tasks cost more to hand out than they save.
pub(crate) const MIN_TASK_FMAS: usize = 1 << 17;

/// On a team of threads (`drift_kernels::team`, the products of a training step) a task is
/// handed over in well under a microsecond, so tasks go down to this many multiply-adds (≈ 1 µs
/// of one core) and no product runs on one thread alone: the 10-class layer's products of W =
/// 128 then use both cores. Epochs in turns with 2¹⁷ and the serial cut, 2 threads: W = 128
/// 0.176/0.176 → 0.172/0.172 s; W = 512 and 1000 within noise (−2% to +1%); 2¹⁵ measured alike.
pub(crate) const TEAM_MIN_TASK_FMAS: usize = 1 << 16;

/// Products under this many multiply-adds run on the calling thread: a fork-join costs a few µs
/// even with both workers awake, more than splitting saves (one core does 2¹⁹ FMAs in ≈ 5 µs).
/// Not higher: rayon parks a worker that finds nothing to do for a few tens of µs, and waking it
/// costs ≈ 25 µs on this 2-vCPU VM; with the 10-class layer's products (6.6·10⁵ FMAs at W = 512)
/// run in parallel the second worker stays awake through the step. Measured at W = 512: with
/// 2²¹ the second worker joined each product 12 µs late on average, with 2¹⁹ 1.5 µs, and the
/// epoch took ≈ 4% less. It only chooses who runs the fixed tasks, never bits.
pub(crate) const SERIAL_FMAS: usize = 1 << 19;

/// A block of packed panels that several tasks use is packed once and shared through flags,
/// unless it has at most this many floats (16 KiB): then each task packs its own copy. For the
/// 10-class layer's products (an A block of 128 × 10 or 16 × 128 floats) packing again costs
/// less than a task waiting for the other core's panels and reading them from its cache
/// (measured on 128 × 10 · 10 × 512 with 2 threads: 10.9 → 10.3 µs per call).
pub(crate) const PRIVATE_PACK_FLOATS: usize = 4096;

/// Reductions up to this long (the `k = 10` backward-data product of the output layer) run their
/// tiles along C's rows instead of down its column panels: their cost is writing C, which the
/// hardware prefetcher streams best row by row.
pub(crate) const SHORT_KC: usize = 32;
