//! The blocking driver, generic over the microkernel: one parallel pass over a fixed grid of
//! C tiles, each task packing what it needs on the way.
//!
//! Loops, outermost first (the names of matrixmultiply's `gemm.rs` and of BLIS):
//!
//! 1. in parallel over the task grid: row blocks of ≤ `mc` rows × column blocks of ≤ `nc`
//!    columns, derived from the shape (and whether the product runs on a team) only
//!    ([`Grid::new`]);
//! 2. for each `kc` block of the reduction, in order: make sure the task's packed B panels
//!    (`kc × NR` each) and packed A panels (`MR × kc` each) exist ([`Packing`]). A task packs
//!    the panels only it uses by itself; panels that several tasks use have a flag each: a task
//!    packs the panels nobody has claimed yet and then waits (spinning) for those another task is
//!    packing, so tasks sharing a block pack it together and nothing is packed twice — except
//!    small blocks, which each task packs for itself rather than wait for another core. An A
//!    whose reduction is contiguous is not packed at all: the microkernel reads its rows in place
//!    ([`APanel::Rows`]), and only a partial last row panel is packed;
//! 3. for each NR-column panel of the task (its `kc × NR` micro-panel is reused from L1/L2);
//! 4. for each MR-row panel of the task (the A block stays in L2): one microkernel call.
//!
//! Loop 2 is sequential inside a task and never split, so every element of C sees the same
//! operations in the same order whatever the grid or the number of threads. The tasks run in one
//! parallel pass per product (`team::run_tasks`: a fork-join, or the products of a training step
//! on one team of threads): on this 2-vCPU VM waking a sleeping rayon worker costs ≈ 25 µs, which
//! a separate packing pass would pay twice (measured: 150 vs 190 GFLOP/s on 128×512×512).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};

use super::kernel::{APanel, Microkernel, TileOp, MAX_TILE};
use super::pack::{pack_panel, Source};
use super::params::{
    BlockSizes, MIN_TASK_FMAS, PRIVATE_PACK_FLOATS, SERIAL_FMAS, SHORT_KC, TARGET_TASKS, TEAM_MIN_TASK_FMAS,
};
use crate::elementwise::{no_operand, ElementOp};
use crate::Epilogue;

/// The output `C` as a raw pointer with strides: element `(i, j)` at `ptr + i·rsc + j·csc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out {
    pub ptr: *mut f32,
    pub rsc: isize,
    pub csc: isize,
}

// SAFETY: `Out` is only handed to the tasks of one `gemm` call, each of which writes a disjoint
// set of C's elements (its tile), while the caller of `gemm` keeps C borrowed mutably.
unsafe impl Send for Out {}
// SAFETY: as for `Send`; shared references to `Out` only copy the pointer.
unsafe impl Sync for Out {}

/// The packing memory shared by the tasks of one call, one flag per packed panel.
struct Packed {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: panels are disjoint; a panel is written only by the task that moved its flag from
// `EMPTY` to `BUSY`, and read only after its flag is `READY` (release/acquire order the write
// before every read); see `Packed::panels`.
unsafe impl Send for Packed {}
// SAFETY: as for `Send`.
unsafe impl Sync for Packed {}

/// A panel's packing state, alone in its cache line so that tasks claiming neighbouring panels
/// do not bounce a shared line between cores.
#[repr(align(64))]
struct Flag(AtomicU8);

const EMPTY: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;
const POISONED: u8 = 3;

/// Marks a panel `POISONED` if its packing unwinds, so that waiters panic instead of spinning.
struct PoisonOnUnwind<'f>(&'f AtomicU8);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.store(POISONED, Ordering::Release);
    }
}

impl Packed {
    /// The consecutive panels `offset..offset + flags.len() · size` (panel `i` at
    /// `offset + i·size`), after making sure each is packed: this task packs (`fill(i, panel)`)
    /// every panel whose flag it can move from `EMPTY` to `BUSY`, then waits for the rest.
    fn panels(&self, flags: &[Flag], offset: usize, size: usize, fill: impl Fn(usize, &mut [f32])) -> &[f32] {
        let len = flags.len() * size;
        assert!(offset + len <= self.len, "packed panels out of range");
        for (i, Flag(flag)) in flags.iter().enumerate() {
            if flag.load(Ordering::Relaxed) == EMPTY
                && flag.compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                let guard = PoisonOnUnwind(flag);
                // SAFETY: in range (checked above); this task alone moved the flag to BUSY, so it
                // is the only writer, and nobody reads before the flag is READY.
                fill(i, unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset + i * size), size) });
                std::mem::forget(guard);
                flag.store(READY, Ordering::Release);
            }
        }
        for Flag(flag) in flags {
            let mut spins = 0u32;
            loop {
                match flag.load(Ordering::Acquire) {
                    READY => break,
                    POISONED => panic!("gemm_blocked: packing failed in another task"),
                    _ if spins < 1 << 12 => {
                        spins += 1;
                        std::hint::spin_loop();
                    }
                    _ => std::thread::yield_now(),
                }
            }
        }
        // SAFETY: in range; every panel is READY, its write ordered before this read, and no
        // one writes it again during the call.
        unsafe { std::slice::from_raw_parts(self.ptr.add(offset), len) }
    }

    /// This task's `count` panels of `size` floats of one operand's block, packed as `packing`
    /// says: shared ones at `at` through their `flags`, owned ones at `at`, or a copy of its own
    /// at `private`.
    ///
    /// # Safety
    /// For `Owned`, no other task uses the panels at `at`; for `Private`, no other task uses the
    /// floats at `private`.
    unsafe fn block(
        &self,
        packing: Packing,
        flags: &[Flag],
        (at, private): (usize, usize),
        (count, size): (usize, usize),
        fill: impl Fn(usize, &mut [f32]),
    ) -> &[f32] {
        match packing {
            Packing::Shared => {
                assert_eq!(flags.len(), count, "one flag per shared panel");
                self.panels(flags, at, size, fill)
            }
            // SAFETY: the caller promised that no other task uses the panels at `at`.
            Packing::Owned => unsafe { self.own(count, at, size, fill) },
            // SAFETY: the caller promised that no other task uses the floats at `private`.
            Packing::Private => unsafe { self.own(count, private, size, fill) },
        }
    }

    /// The `count` consecutive panels from `offset`, packed by this task without flags.
    ///
    /// # Safety
    /// No other task reads or writes these floats during the call.
    unsafe fn own(&self, count: usize, offset: usize, size: usize, fill: impl Fn(usize, &mut [f32])) -> &[f32] {
        let len = count * size;
        assert!(offset + len <= self.len, "packed panels out of range");
        // SAFETY: in range; this task's alone (the caller's guarantee).
        let block = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset), len) };
        block.chunks_exact_mut(size).enumerate().for_each(|(i, d)| fill(i, d));
        block
    }
}

/// Who packs a block of panels that the task grid needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packing {
    /// One task uses the panels: it packs them in place, without flags.
    Owned,
    /// Several tasks use them but they are small: each task packs its own copy, so that no task
    /// waits for another or reads panels from the other core's cache (each such hand-off costs
    /// more than packing a few KiB again).
    Private,
    /// Several tasks use them: packed once, shared through the panel flags.
    Shared,
}

impl Packing {
    /// For a block of `floats` packed floats used by `users` tasks.
    fn choose(users: usize, floats: usize) -> Packing {
        if users == 1 {
            Packing::Owned
        } else if floats <= PRIVATE_PACK_FLOATS {
            Packing::Private
        } else {
            Packing::Shared
        }
    }
}

/// The task grid: row-block bounds in MR-panels (`rows[r]..rows[r + 1]`) and column-block
/// bounds in NR-panels. Derived from the shape and the smallest task (smaller on a team), never
/// from the number of threads; it never enters an element's arithmetic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
}

impl Grid {
    /// Row blocks of at most `mc` rows and column blocks of at most `nc` columns, split further
    /// until there are `TARGET_TASKS` tasks (rounded down to a power of two) or a task would fall
    /// under `min_task_fmas` multiply-adds. Columns are split first, down to one NR panel per
    /// block: the tasks of a 128-row batch then share the packed A block (in L2) and each reuses
    /// its own B micro-panel across all row panels (measured best of rows-first, columns-first
    /// and larger-first on the training shapes). A short reduction (`k ≤ SHORT_KC`) is split by rows
    /// first, so that its tasks write whole rows of C. The blocks cover the panels of C exactly
    /// once, their sizes within one panel of each other.
    pub(crate) fn new(
        bs: BlockSizes,
        (mr, nr): (usize, usize),
        (m, k, n): (usize, usize, usize),
        min_task_fmas: usize,
    ) -> Grid {
        let (mp, np) = (m.div_ceil(mr), n.div_ceil(nr));
        let mut rb = mp.div_ceil((bs.mc / mr).max(1));
        let mut cb = np.div_ceil((bs.nc / nr).max(1));
        let fmas = m.saturating_mul(n).saturating_mul(k);
        // A power of two, so that 2 or 4 threads get equal shares of equal tasks.
        let want = TARGET_TASKS.min(fmas / min_task_fmas).max(1);
        let want = 1 << want.ilog2();
        // Rows first for a short reduction: its tasks then write whole rows of C.
        let rows_first = k <= SHORT_KC;
        while rb * cb < want && (rb < mp || cb < np) {
            if cb < np && !(rows_first && rb < mp) {
                cb += 1;
            } else {
                rb += 1;
            }
        }
        Grid { rows: (0..=rb).map(|r| r * mp / rb).collect(), cols: (0..=cb).map(|q| q * np / cb).collect() }
    }

    fn row_blocks(&self) -> usize {
        self.rows.len() - 1
    }

    fn col_blocks(&self) -> usize {
        self.cols.len() - 1
    }
}

/// `C = epilogue(A·B)` for `A: m×k` (lanes = rows), `B: k×n` (lanes = columns), `m, k, n > 0`,
/// in the driver's coordinates: with `bias_along_rows` (C is the caller's transpose, see `run`
/// in `mod.rs`) a bias is one value per row of C, else per column. `Epilogue::Sgd` needs `k ≤
/// kc` (one reduction block: the step takes the whole gradient).
///
/// Products under `SERIAL_FMAS` multiply-adds run their tasks in order on the calling thread,
/// without a fork-join. On a team (see `team.rs`), where handing a task over costs far less,
/// every product runs on the team, split down to `TEAM_MIN_TASK_FMAS`. Any grid gives the same
/// bits: no task splits an element's reduction.
///
/// # Safety
/// The caller guarantees: the CPU supports `K`'s instruction set; `a` and `b` hold all the
/// elements of their views; `c` addresses `m × n` writable floats, none of them inside `a` or `b`,
/// that nothing else reads or writes during the call; the slices of `epilogue` have C's extent
/// (`bias`: one value per row or column, `mask`: every `i·rsc + j·csc`).
pub(crate) unsafe fn gemm<K: Microkernel>(
    bs: BlockSizes,
    (m, k, n): (usize, usize, usize),
    a: Source<'_>,
    b: Source<'_>,
    c: Out,
    (epilogue, bias_along_rows): (Epilogue<'_>, bool),
) {
    debug_assert!(m > 0 && k > 0 && n > 0 && a.lanes == m && b.lanes == n);
    debug_assert!(!matches!(epilogue, Epilogue::Sgd { .. }) || k <= bs.kc, "an SGD step fused over several kc blocks");
    const { assert!(K::MR * K::NR <= MAX_TILE, "the edge tile on the stack is too small for this kernel") };
    let (mr, nr) = (K::MR, K::NR);
    let (m_pad, n_pad) = (m.div_ceil(mr) * mr, n.div_ceil(nr) * nr);
    let fmas = m.saturating_mul(n).saturating_mul(k);
    let on_team = crate::team::leading();
    let grid = Grid::new(bs, (mr, nr), (m, k, n), if on_team { TEAM_MIN_TASK_FMAS } else { MIN_TASK_FMAS });
    let cb = grid.col_blocks();
    let (k_blocks, kc_max) = kc_blocks(bs.kc, k);
    let (mp, np) = (m_pad / mr, n_pad / nr);
    let tasks = grid.row_blocks() * cb;
    // The largest A block (rows of a row block × kc) and B block, in floats: a row block's A
    // panels are used by every column block's task, a column block's B panels by every row
    // block's.
    let widest = |bounds: &[usize]| bounds.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let (a_block_len, b_block_len) = (widest(&grid.rows) * mr * kc_max, widest(&grid.cols) * nr * kc_max);
    // An A whose reduction is contiguous (the activations of `X·Wᵀ`, the gradients of `dZ·W`)
    // is read in place by the microkernel: packing it would be a transposing copy. Only a
    // partial last row panel is packed, by each task that needs it, for the zeros past the edge.
    let a_in_place = a.k_stride == 1;
    let a_edge = a_in_place && m % mr != 0;
    let a_packing = if a_in_place { Packing::Private } else { Packing::choose(cb, a_block_len) };
    let b_packing = Packing::choose(grid.row_blocks(), b_block_len);
    let flags = |packing, panels| if packing == Packing::Shared { k_blocks * panels } else { 0 };
    let a_flags: Vec<Flag> = (0..flags(a_packing, mp)).map(|_| Flag(AtomicU8::new(EMPTY))).collect();
    let b_flags: Vec<Flag> = (0..flags(b_packing, np)).map(|_| Flag(AtomicU8::new(EMPTY))).collect();
    // Packed A: per kc block, m_pad × kc_len floats (MR-row panels one after the other); then B,
    // per kc block kc_len × n_pad; then, per task, its private copies of the A and B blocks (of
    // A's edge panel only, for an A read in place). Each part is rounded up to 16 floats so that
    // the next one is 64-byte aligned.
    let a_len = if a_in_place { 0 } else { (m_pad * k).next_multiple_of(16) };
    let b_len = (n_pad * k).next_multiple_of(16);
    let private_a = match a_packing {
        Packing::Private if a_edge => (mr * kc_max).next_multiple_of(16),
        Packing::Private if !a_in_place => a_block_len.next_multiple_of(16),
        _ => 0,
    };
    let private_b = if b_packing == Packing::Private { b_block_len.next_multiple_of(16) } else { 0 };
    let pack = |d: &mut [f32], width, src, lane0, p0, kc| {
        // SAFETY: `K::AVX` only for kernels whose instruction set includes AVX, which our caller
        // guarantees this CPU supports.
        unsafe { pack_panel(d, width, src, lane0, p0, kc, K::AVX) }
    };
    with_scratch(a_len + b_len + tasks * (private_a + private_b), |buf| {
        let packed = Packed { ptr: buf.as_mut_ptr(), len: buf.len() };
        let (grid, packed, a_flags, b_flags) = (&grid, &packed, &a_flags, &b_flags);
        let run_task = |t: usize| {
            // Row block r starts at column block r·cb/rb: the threads' ranges of tasks then begin
            // on different B panels, which they pack side by side instead of one packing while
            // the other waits for the same panel.
            let r = t / cb;
            let q = (t % cb + r * cb / grid.row_blocks()) % cb;
            let (ip0, ip1, jp0, jp1) = (grid.rows[r], grid.rows[r + 1], grid.cols[q], grid.cols[q + 1]);
            let private = a_len + b_len + t * (private_a + private_b);
            for (kb, p0) in (0..k).step_by(kc_max).enumerate() {
                let kc = kc_max.min(k - p0);
                // SAFETY: B is Owned only when the grid has one row block (`Packing::choose`), so
                // no other task uses this task's column block; a Private copy lies in this task's
                // own region `private + private_a ..`.
                let b_block = unsafe {
                    packed.block(
                        b_packing,
                        b_flags.get(kb * np + jp0..kb * np + jp1).unwrap_or_default(),
                        (a_len + p0 * n_pad + jp0 * nr * kc, private + private_a),
                        (jp1 - jp0, nr * kc),
                        |i, d| pack(d, nr, b, (jp0 + i) * nr, p0, kc),
                    )
                };
                let a_block = if a_in_place {
                    let edge = if a_edge && ip1 == mp {
                        // SAFETY: this task's own region `private ..` holds MR·kc floats.
                        unsafe { packed.own(1, private, mr * kc, |_, d| pack(d, mr, a, (mp - 1) * mr, p0, kc)) }
                    } else {
                        &[]
                    };
                    ABlock::Rows { a, p0, edge }
                } else {
                    // SAFETY: A is Owned only when the grid has one column block
                    // (`Packing::choose`), so no other task uses this task's row block; a Private
                    // copy lies in this task's own region `private ..`.
                    ABlock::Packed(unsafe {
                        packed.block(
                            a_packing,
                            a_flags.get(kb * mp + ip0..kb * mp + ip1).unwrap_or_default(),
                            (p0 * m_pad + ip0 * mr * kc, private),
                            (ip1 - ip0, mr * kc),
                            |i, d| pack(d, mr, a, (ip0 + i) * mr, p0, kc),
                        )
                    })
                };
                let block = (p0 == 0, p0 + kc == k);
                // SAFETY: this task alone writes panels ip0..ip1 × jp0..jp1 of C (the grid
                // partitions them); the rest is our caller's guarantee, forwarded.
                unsafe {
                    gemm_block::<K>(
                        kc,
                        (m, n),
                        (ip0..ip1, jp0),
                        a_block,
                        b_block,
                        c,
                        (epilogue, bias_along_rows),
                        block,
                    )
                };
            }
        };
        if !on_team && fmas < SERIAL_FMAS {
            (0..tasks).for_each(run_task);
        } else {
            crate::team::run_tasks(tasks, &run_task);
        }
    });
}

/// The reduction cut into `⌈k / kc⌉` blocks of equal length (the last one shorter by less than
/// the number of blocks): `(blocks, length)`. Depends on `kc` and `k` only; it is the one cut
/// that shapes the arithmetic (each block is an FMA chain from zero, then added to C).
fn kc_blocks(kc: usize, k: usize) -> (usize, usize) {
    let blocks = k.div_ceil(kc).max(1);
    (blocks, k.div_ceil(blocks))
}

/// A task's A operand for one `kc` block.
#[derive(Clone, Copy)]
enum ABlock<'p> {
    /// Its MR-row panels, packed one after the other from its first row panel.
    Packed(&'p [f32]),
    /// A read in place from reduction index `p0` (`a.k_stride = 1`), except a partial last row
    /// panel of A, packed in `edge` (empty if the task does not have it).
    Rows { a: Source<'p>, p0: usize, edge: &'p [f32] },
}

impl ABlock<'_> {
    /// The microkernel's view of row panel `ip` (`i`-th of the task) over `kc` indices.
    #[inline(always)]
    fn panel(&self, (ip, i): (usize, usize), (mr, kc): (usize, usize)) -> APanel {
        match *self {
            ABlock::Packed(panels) => APanel::Packed(panels[i * mr * kc..(i + 1) * mr * kc].as_ptr()),
            ABlock::Rows { a, edge, .. } if (ip + 1) * mr > a.lanes => APanel::Packed(edge[..mr * kc].as_ptr()),
            ABlock::Rows { a, p0, .. } => {
                let first = ip * mr * a.lane_stride + p0;
                // A(ip·MR + r, p0 + q) for r < MR, q < kc lies in `a.data`: `source` in mod.rs
                // checked A's extent, and the panel's rows and indices are inside A.
                assert!(first + (mr - 1) * a.lane_stride + kc <= a.data.len(), "A panel outside A");
                APanel::Rows { ptr: a.data[first..].as_ptr(), lda: a.lane_stride }
            }
        }
    }
}

/// One `kc` block of one task: NR-column panels outside, MR-row panels inside. `a` gives the
/// task's MR-row panels `ips`, `b` holds its NR-column panels from column panel `jp0`;
/// `(first, last)` says whether this is the first and the last block of the reduction.
///
/// Full tiles go straight from the registers to C, the epilogue applied on the way
/// ([`TileOp`]). A tile on the edge of C, or one whose epilogue needs strided C, is written to a
/// tile on the stack first and then, still in L1, combined into C by [`finish`].
///
/// # Safety
/// As for [`gemm`]; and no other thread writes these panels of C during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block<K: Microkernel>(
    kc: usize,
    (m, n): (usize, usize),
    (ips, jp0): (std::ops::Range<usize>, usize),
    a: ABlock<'_>,
    b: &[f32],
    c: Out,
    (epilogue, bias_along_rows): (Epilogue<'_>, bool),
    (first, last): (bool, bool),
) {
    let (mr, nr) = (K::MR, K::NR);
    // What this block does to each element: the plain sum before the last block (added to the
    // partial sum in C after the first), the epilogue on the last.
    let add = !first || epilogue == Epilogue::Accumulate;
    let op = match epilogue {
        Epilogue::Bias(_) if last => ElementOp::Bias { add, relu: false },
        Epilogue::BiasRelu(_) if last => ElementOp::Bias { add, relu: true },
        Epilogue::ReluMask(_) if last => ElementOp::Mask { add },
        Epilogue::Sgd { lr } => ElementOp::Sgd(lr),
        _ if add => ElementOp::Add,
        _ => ElementOp::Store,
    };
    // The operand of element (i, j) at offset o of C, for `finish`.
    let operand = |i: usize, j: usize, o: usize| match epilogue {
        Epilogue::Bias(bias) | Epilogue::BiasRelu(bias) => bias[if bias_along_rows { i } else { j }],
        Epilogue::ReluMask(mask) => mask[o],
        _ => no_operand(),
    };
    // How a full tile at element offset `o`, row `i`, column `j` of C is written from the
    // registers; `None` where it goes through the stack tile and `finish` instead (an epilogue on
    // strided C, or a bias along the rows of the transposed orientation, that the kernel does not
    // write itself).
    let full_tile_op = |o: usize, i: usize, j: usize| match (op, epilogue) {
        (ElementOp::Store | ElementOp::Add, _) => Some(TileOp::plain(op)),
        // Contiguous columns (the transposed orientation), whose bias is along the rows: an
        // 8-row kernel writes them from its registers.
        (ElementOp::Bias { .. }, Epilogue::Bias(bias) | Epilogue::BiasRelu(bias))
            if K::COLUMNS && c.csc != 1 && c.rsc == 1 && bias_along_rows =>
        {
            Some(TileOp { op, operand: bias[i..i + mr].as_ptr() })
        }
        _ if c.csc != 1 || (bias_along_rows && matches!(op, ElementOp::Bias { .. })) => None,
        (_, Epilogue::Bias(bias) | Epilogue::BiasRelu(bias)) => Some(TileOp { op, operand: bias[j..j + nr].as_ptr() }),
        (_, Epilogue::ReluMask(mask)) => Some(TileOp { op, operand: mask[o..].as_ptr() }),
        _ => Some(TileOp::plain(op)),
    };
    // Zeroed once per block, not per tile: the kernel overwrites all MR·NR values it uses.
    let mut tile = [0.0f32; MAX_TILE];
    // A short reduction (the k = 10 backward-data product of the output layer) costs as much in
    // writing C as in FMAs, and both operands' blocks sit in L1 anyway: go along C's rows, which
    // the hardware prefetcher streams best. Otherwise down each column panel, whose kc × NR
    // micro-panel stays in L1 for all the row panels.
    // (`kc ≤ SHORT_KC` exactly when `k ≤ SHORT_KC`, the grid's test: a reduction under the block
    // size is one block, a longer one is cut into blocks of over half of it.)
    let along_rows = kc <= SHORT_KC;
    let (row_panels, col_panels) = (ips.len(), b.len() / (nr * kc));
    let (outer, inner) = if along_rows { (row_panels, col_panels) } else { (col_panels, row_panels) };
    for o in 0..outer {
        for p in 0..inner {
            let (i, q) = if along_rows { (o, p) } else { (p, o) };
            let (ip, jp) = (ips.start + i, jp0 + q);
            let b_panel = &b[q * nr * kc..(q + 1) * nr * kc];
            let cols = nr.min(n - jp * nr);
            let a_panel = a.panel((ip, i), (mr, kc));
            let rows = mr.min(m - ip * mr);
            let offset = (ip * mr) as isize * c.rsc + (jp * nr) as isize * c.csc;
            let full = rows == mr && cols == nr;
            match full.then(|| full_tile_op(offset as usize, ip * mr, jp * nr)).flatten() {
                // SAFETY: a full tile inside C (ip·MR < m, jp·NR < n), ours alone; an A panel of
                // MR rows over kc indices (`ABlock::panel`) and a B panel of kc·NR floats; `op` is
                // plain unless csc = 1 or (a `COLUMNS` kernel, rsc = 1) a bias along the rows,
                // and its operand comes from a slice of C's extent, at this tile.
                Some(op) => unsafe { K::kernel(kc, a_panel, b_panel.as_ptr(), c.ptr.offset(offset), c.rsc, c.csc, op) },
                None => {
                    // SAFETY: `tile` holds MR·NR ≤ MAX_TILE floats, row-major with stride NR.
                    unsafe {
                        K::kernel(
                            kc,
                            a_panel,
                            b_panel.as_ptr(),
                            tile.as_mut_ptr(),
                            nr as isize,
                            1,
                            TileOp::plain(ElementOp::Store),
                        )
                    };
                    // SAFETY: rows × cols from (ip·MR, jp·NR) is inside C and this task's alone.
                    unsafe { finish(&tile[..mr * nr], nr, (rows, cols), c, (ip * mr, jp * nr), op, operand) };
                }
            }
        }
    }
}

/// Combines the `rows × cols` block sums `x` of a tile (row-major, stride `nr`) into C at
/// `(i0, j0)` through `op`, the element `(i, j)` at offset `o` of C taking `operand(i, j, o)` as
/// its bias or mask value. Each element is computed exactly as the separate pass would compute
/// it from the stored product, so fusing never changes a bit.
///
/// Rows of C are contiguous except in the transposed orientation (thin products, the forward of
/// wide layers), where this handles the edge tiles; the contiguous case runs over slices, which
/// the compiler vectorises.
///
/// # Safety
/// Every element `(i0 + i, j0 + j)`, `i < rows`, `j < cols`, is inside C and no other thread's.
unsafe fn finish(
    x: &[f32],
    nr: usize,
    (rows, cols): (usize, usize),
    c: Out,
    (i0, j0): (usize, usize),
    op: ElementOp,
    operand: impl Fn(usize, usize, usize) -> f32,
) {
    for (i, x) in (i0..).zip(x.chunks_exact(nr).take(rows)) {
        let x = &x[..cols];
        if c.csc == 1 {
            let o = i * c.rsc as usize + j0;
            // SAFETY: row i, columns j0..j0 + cols of C (contiguous: csc = 1) are inside C and
            // ours (caller).
            let row = unsafe { std::slice::from_raw_parts_mut(c.ptr.add(o), cols) };
            for (jj, (p, &x)) in row.iter_mut().zip(x).enumerate() {
                *p = op.apply(*p, x, || operand(i, j0 + jj, o + jj));
            }
        } else {
            for (j, &x) in (j0..).zip(x) {
                let o = i as isize * c.rsc + j as isize * c.csc;
                // SAFETY: (i, j) is inside C and ours (caller).
                unsafe {
                    let p = c.ptr.offset(o);
                    *p = op.apply(*p, x, || operand(i, j, o as usize));
                }
            }
        }
    }
}

thread_local! {
    /// Packing memory of the calling thread, kept between calls (it grows to the largest product
    /// seen: `(m + MR)·k + k·(n + NR)` floats).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` floats of 64-byte aligned scratch memory (contents unspecified).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    fn aligned(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
        if v.len() < len + 16 {
            v.resize(len + 16, 0.0);
        }
        let off = v.as_ptr().align_offset(64);
        let off = if off < 16 { off } else { 0 };
        &mut v[off..off + len]
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => f(aligned(&mut v, len)),
        // A nested call on this thread (a rayon worker that picked up another GEMM while waiting).
        Err(_) => f(aligned(&mut Vec::new(), len)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_every_panel_once_in_balanced_blocks() {
        let bs = BlockSizes { mc: 144, kc: 256, nc: 256 };
        let shapes: [(usize, usize, usize); 8] = [
            (1, 1, 1),
            (128, 784, 512),
            (96, 512, 10),
            (512, 128, 784),
            (1000, 128, 1000),
            (10, 128, 512),
            (5000, 7, 3),
            (128, 10, 1000),
        ];
        for ((m, k, n), min_task) in shapes.into_iter().flat_map(|s| [(s, MIN_TASK_FMAS), (s, TEAM_MIN_TASK_FMAS)]) {
            let (mr, nr) = (12, 32);
            let g = Grid::new(bs, (mr, nr), (m, k, n), min_task);
            for bounds in [&g.rows, &g.cols] {
                assert_eq!(bounds[0], 0);
                let sizes: Vec<usize> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(*lo >= 1 && hi - lo <= 1, "{m}×{k}×{n}: block sizes {sizes:?}");
            }
            assert_eq!(*g.rows.last().unwrap(), m.div_ceil(mr), "{m}×{k}×{n}: rows");
            assert_eq!(*g.cols.last().unwrap(), n.div_ceil(nr), "{m}×{k}×{n}: cols");
            // Split beyond the mc × nc cut only towards TARGET_TASKS (one step may overshoot).
            let cut = m.div_ceil(mr).div_ceil(bs.mc / mr) * n.div_ceil(nr).div_ceil(bs.nc / nr);
            assert!(g.row_blocks() * g.col_blocks() <= cut.max(2 * TARGET_TASKS), "{m}×{k}×{n}: {g:?}");
        }
    }
}
