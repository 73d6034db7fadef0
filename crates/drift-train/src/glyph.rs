//! A 5×7 bitmap font for the lowercase letters, scaled to a W×W mask: the letter drawn into the
//! hidden→hidden matrix before training (Figure 1 of the study), so that whether the initial
//! weights persist can be seen by eye.

/// The letters [`glyph_mask`] can draw.
pub const GLYPH_LETTERS: &str = "abcdefghijklmnopqrstuvwxyz";

/// Rows of each glyph, top to bottom; bit 4 is the leftmost column.
const FONT: [[u8; 7]; 26] = [
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // a
    [0b10000, 0b10000, 0b11110, 0b10001, 0b10001, 0b10001, 0b11110], // b
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // c
    [0b00001, 0b00001, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111], // d
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // e
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // f
    [0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // g
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // h
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // i
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // j
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // k
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // l
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // m
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // n
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // o
    [0b00000, 0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000], // p
    [0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001], // q
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // r
    [0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110], // s
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // t
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // u
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // v
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // w
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // x
    [0b00000, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // y
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // z
];

/// The glyph of `letter` scaled (nearest neighbour, aspect kept) into a `size × size` grid with a
/// margin of one eighth on each side, row-major; `true` marks ink. `None` for letters outside
/// [`GLYPH_LETTERS`].
///
/// ```
/// let mask = drift_train::glyph_mask('l', 16).unwrap();
/// assert_eq!(mask.len(), 256);
/// assert!(mask.iter().any(|&ink| ink) && mask.iter().any(|&ink| !ink));
/// ```
pub fn glyph_mask(letter: char, size: usize) -> Option<Vec<bool>> {
    let index = GLYPH_LETTERS.find(letter)?;
    let rows = &FONT[index];
    let ink = |r: usize, c: usize| rows[r] >> (4 - c) & 1 == 1;
    // Bounding box of the ink, so every letter fills the grid alike.
    let used_rows: Vec<usize> = (0..7).filter(|&r| rows[r] != 0).collect();
    let used_cols: Vec<usize> = (0..5).filter(|&c| (0..7).any(|r| ink(r, c))).collect();
    let (r0, r1) = (used_rows[0], *used_rows.last()?);
    let (c0, c1) = (used_cols[0], *used_cols.last()?);
    let (h, w) = (r1 - r0 + 1, c1 - c0 + 1);
    let margin = size as f64 / 8.0;
    let cell = (size as f64 - 2.0 * margin) / h.max(w) as f64;
    let top = (size as f64 - cell * h as f64) / 2.0;
    let left = (size as f64 - cell * w as f64) / 2.0;
    let mut mask = vec![false; size * size];
    for r in 0..size {
        let gy = ((r as f64 + 0.5 - top) / cell).floor();
        if gy < 0.0 || gy >= h as f64 {
            continue;
        }
        for c in 0..size {
            let gx = ((c as f64 + 0.5 - left) / cell).floor();
            if gx >= 0.0 && gx < w as f64 && ink(r0 + gy as usize, c0 + gx as usize) {
                mask[r * size + c] = true;
            }
        }
    }
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_letter_has_ink_and_background() {
        for letter in GLYPH_LETTERS.chars() {
            let mask = glyph_mask(letter, 64).unwrap();
            let ink = mask.iter().filter(|&&v| v).count();
            assert!(ink > 64 && ink < 64 * 64 / 2, "{letter}: {ink} ink cells");
        }
        assert!(glyph_mask('A', 8).is_none());
    }

    #[test]
    fn small_a_looks_like_an_a() {
        // 7 + 2·margin: one cell per font pixel is not guaranteed, but the bowl's hole must show.
        let mask = glyph_mask('a', 40).unwrap();
        let art: Vec<String> =
            mask.chunks(40).map(|r| r.iter().map(|&v| if v { '#' } else { '.' }).collect()).collect();
        assert!(art[0].chars().all(|c| c == '.'), "top margin is blank");
        assert!(art.iter().any(|row| row.contains('#')));
    }
}
