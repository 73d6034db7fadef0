//! GEMM `C = A·B` over strided views, parallel over fixed blocks of rows of `C`.

use rayon::prelude::*;

/// Rows of `C` per parallel task. Fixed (not derived from the thread count) so that the split,
/// and with it every result bit, is the same on any number of threads.
pub const ROW_BLOCK: usize = 32;

/// A read-only matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major `rows × cols` view. Panics if `data.len() != rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatRef::new: slice of {} elements for a {rows}×{cols} matrix", data.len());
        MatRef { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose, as a view with swapped strides (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(i, j)`; for tests and references, not for hot loops.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// The backing slice and the strides `(row_stride, col_stride)`, for the blocked GEMM's packing.
    pub(crate) fn parts(&self) -> (&'a [f32], usize, usize) {
        (self.data, self.row_stride, self.col_stride)
    }

    /// Rows `start..start + len` as a view.
    fn row_range(self, start: usize, len: usize) -> Self {
        let offset = start * self.row_stride;
        MatRef { data: &self.data[offset.min(self.data.len())..], rows: len, ..self }
    }
}

/// A mutable dense row-major `rows × cols` view.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
}

impl<'a> MatMut<'a> {
    /// Panics if `data.len() != rows * cols`.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatMut::new: slice of {} elements for a {rows}×{cols} matrix", data.len());
        MatMut { data, rows, cols }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The backing dense row-major slice, rows and cols, for the blocked GEMM.
    pub(crate) fn into_parts(self) -> (&'a mut [f32], usize, usize) {
        (self.data, self.rows, self.cols)
    }
}

/// `C = A·B` with matrixmultiply's sgemm per block of rows (overwrites `C`, `beta = 0`): the
/// `matrixmultiply` kernel, kept as the reference and fallback of the blocked kernels.
///
/// Panics unless `A` is `m×k`, `B` is `k×n` and `C` is `m×n`. A `k = 0` product yields zeros.
pub fn gemm_matrixmultiply(a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: A is {m}×{k} but B is {}×{n}", b.rows);
    assert!(c.rows == m && c.cols == n, "gemm: C is {}×{}, expected {m}×{n}", c.rows, c.cols);
    if m == 0 || n == 0 {
        return;
    }
    c.data.par_chunks_mut(ROW_BLOCK * n).enumerate().for_each(|(block, c_rows)| {
        let rows = c_rows.len() / n;
        gemm_serial(a.row_range(block * ROW_BLOCK, rows), b, c_rows);
    });
}

/// One block of rows on the calling thread.
fn gemm_serial(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k == 0 {
        c.fill(0.0);
        return;
    }
    check_extent(&a);
    check_extent(&b);
    // SAFETY: `check_extent` proved every (i, j) with i < rows, j < cols of `a` and `b` lies
    // inside its slice; `c` is a dense m×n slice (its length is m*n by construction of the
    // blocks). matrixmultiply reads only those elements and writes only `c`, which is borrowed
    // mutably and does not alias the inputs.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Panics unless the last element of the view lies inside its slice.
fn check_extent(m: &MatRef<'_>) {
    if m.rows > 0 && m.cols > 0 {
        let last = (m.rows - 1) * m.row_stride + (m.cols - 1) * m.col_stride;
        assert!(last < m.data.len(), "gemm: view of {}×{} exceeds its slice", m.rows, m.cols);
    }
}
