//! The HASYv2 release (Thoma 2017): 168 233 handwritten symbols of 369 classes, 32 × 32 pixels,
//! with ten train/test folds for its classification task. [`load`] reads one fold of the
//! official release folder:
//!
//! ```text
//! DIR/hasy-data-labels.csv                    path,symbol_id,latex,user_id (marks the release)
//! DIR/symbols.csv                             symbol_id,latex,…: its row order is labels 0…N−1
//! DIR/hasy-data/v2-00000.png …                the images
//! DIR/classification-task/fold-K/train.csv    same columns as hasy-data-labels.csv
//! DIR/classification-task/fold-K/test.csv
//! ```
//!
//! The PNGs are decoded once into two raw files in the cache (1024 bytes per image, in csv
//! order), which later loads check against the size and SHA-256 recorded when they were made
//! and memory-map. The cache key is a SHA-256 over the three csv files and
//! every image the fold uses, so any change to the data gives a new cache entry instead of stale
//! pixels. Pixels are kept as the PNG has them: dark strokes on a white (255) background.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::{cache, checksums, DataError, Dataset, Split};

/// Width and height of every HASYv2 image.
pub const SIDE: u32 = 32;
/// Pixels per image.
pub const DIM: usize = (SIDE * SIDE) as usize;
/// The classification task has folds 1 to `FOLDS`.
pub const FOLDS: u32 = 10;

const NAME: &str = "hasyv2";

/// Changing how pixels are produced must change every cache key, so the key starts with this.
const CACHE_VERSION: &[u8] = b"drift hasyv2 raw cache v1\0";

/// Appended to "no such file" errors, so the user sees what a release folder holds.
const LAYOUT: &str = "a HASYv2 release folder holds hasy-data-labels.csv, symbols.csv, hasy-data/ and \
                      classification-task/fold-1 … fold-10/{train,test}.csv";

/// Loads fold `fold` (1-based) of the HASYv2 release in `dir`; pixels are decoded once into a raw
/// cache under `cache_dir` and memory-mapped.
pub fn load(dir: &Path, fold: u32, cache_dir: &Path) -> Result<Dataset, DataError> {
    if !(1..=FOLDS).contains(&fold) {
        let reason = format!("fold {fold} does not exist: the HASYv2 classification task has folds 1 to {FOLDS}");
        return Err(format_error(dir, reason));
    }
    require(dir, Entry::Folder)?;
    let labels_csv = dir.join("hasy-data-labels.csv");
    require(&labels_csv, Entry::File)?;
    check_header(&labels_csv, &["path", "symbol_id"])?;
    let symbols_csv = dir.join("symbols.csv");
    require(&symbols_csv, Entry::File)?;
    let symbols_bytes = read(&symbols_csv)?;
    let symbols = Symbols::parse(&symbols_csv, &symbols_bytes)?;
    require(&dir.join("hasy-data"), Entry::Folder)?;

    let fold_dir = fold_dir(dir, fold)?;
    let train = Listing::read(dir, &fold_dir, "train.csv", &symbols)?;
    let test = Listing::read(dir, &fold_dir, "test.csv", &symbols)?;
    let train_labels: Vec<u16> = train.images.iter().map(|i| i.label).collect();
    if let Some(reason) = crate::single_class(&train_labels) {
        return Err(format_error(&train.csv, reason));
    }
    let train_png = read_images(&train)?;
    let test_png = read_images(&test)?;

    let key = cache_key(&symbols_bytes, [(&train, &train_png), (&test, &test_png)]);
    let cache = cache_dir.join(NAME);
    let stem = format!("{}-fold-{fold}", &key[..16]);
    let source = format!("the HASYv2 release in {}", dir.display());
    let (train, rebuilt_train) = cached_split(&cache, &format!("{stem}-train.u8"), &train, &train_png, &source)?;
    let (test, rebuilt_test) = cached_split(&cache, &format!("{stem}-test.u8"), &test, &test_png, &source)?;
    Ok(Dataset {
        name: NAME.into(),
        train,
        test,
        classes: symbols.count,
        input_dim: DIM,
        source: format!(
            "{}: fold {fold} (hasy-data-labels.csv, symbols.csv, classification-task/fold-{fold}/{{train,test}}.csv)",
            dir.display()
        ),
        warnings: rebuilt_train.into_iter().chain(rebuilt_test).collect(),
    })
}

fn format_error(path: &Path, reason: String) -> DataError {
    DataError::Format { path: path.to_path_buf(), reason }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.to_path_buf();
    move |source| DataError::Io { path, source }
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(io_at(path))
}

#[derive(Clone, Copy)]
enum Entry {
    File,
    Folder,
}

/// Refuses up front a missing part of the release, with the layout in the message: a bare
/// "No such file" would not tell the user what the folder should hold.
fn require(path: &Path, entry: Entry) -> Result<(), DataError> {
    let (present, what) = match entry {
        Entry::File => (path.is_file(), "file"),
        Entry::Folder => (path.is_dir(), "folder"),
    };
    if present {
        Ok(())
    } else {
        Err(format_error(path, format!("no such {what}; {LAYOUT}")))
    }
}

/// `classification-task/fold-K`, or an error listing the folds that do exist.
fn fold_dir(dir: &Path, fold: u32) -> Result<PathBuf, DataError> {
    let task = dir.join("classification-task");
    require(&task, Entry::Folder)?;
    let fold_dir = task.join(format!("fold-{fold}"));
    if fold_dir.is_dir() {
        return Ok(fold_dir);
    }
    let mut folds: Vec<u32> = fs::read_dir(&task)
        .map_err(io_at(&task))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("fold-")?.parse().ok())
        .collect();
    folds.sort_unstable();
    let have = match folds.as_slice() {
        [] => format!("{} has no fold-K folders", task.display()),
        _ => format!("the folds present are {}", folds.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
    };
    Err(format_error(&fold_dir, format!("no such folder; {have}")))
}

/// One CSV record: the 1-based line it starts on, and its fields.
#[derive(Debug, PartialEq)]
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits CSV text into records after RFC 4180: fields separated by commas, a field in double
/// quotes may hold commas, line breaks and doubled quotes (`""` for `"`), records end at `\n` or
/// `\r\n`. Blank lines are skipped. A quote inside an unquoted field is kept as it is.
fn records(path: &Path, text: &str) -> Result<Vec<Record>, DataError> {
    let at = |line: usize, reason: &str| format_error(path, format!("line {line}: {reason}"));
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let (mut line, mut start) = (1, 1);
    // Inside a quoted field; just after the closing quote of one.
    let (mut quoted, mut closed) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => (quoted, closed) = (false, true),
                _ => {
                    line += usize::from(c == '\n');
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !closed => quoted = true,
            ',' => {
                fields.push(std::mem::take(&mut field));
                closed = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut out, &mut fields, &mut field, closed, start);
                closed = false;
                line += 1;
                start = line;
            }
            _ if closed => return Err(at(line, "text after the closing quote of a field")),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(at(start, "a quoted field is never closed"));
    }
    end_record(&mut out, &mut fields, &mut field, closed, start);
    Ok(out)
}

/// Ends the record in progress; an empty line (no field, no quotes) is no record.
fn end_record(out: &mut Vec<Record>, fields: &mut Vec<String>, field: &mut String, closed: bool, line: usize) {
    if fields.is_empty() && field.is_empty() && !closed {
        return;
    }
    fields.push(std::mem::take(field));
    out.push(Record { line, fields: std::mem::take(fields) });
}

/// `bytes` as text, without a leading byte-order mark.
fn text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, DataError> {
    let s = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        format_error(path, format!("line {line}: not UTF-8 text"))
    })?;
    Ok(s.strip_prefix('\u{feff}').unwrap_or(s))
}

/// The index of column `name` in `header` (line 1 of `path`).
fn column(path: &Path, header: &[String], name: &str) -> Result<usize, DataError> {
    header
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| format_error(path, format!("line 1: the header '{}' has no column '{name}'", header.join(","))))
}

/// Checks that the first line of `path` names `columns`, without reading the rest of the file
/// (hasy-data-labels.csv lists all 168 233 images, and only marks the release here).
fn check_header(path: &Path, columns: &[&str]) -> Result<(), DataError> {
    let mut first = Vec::new();
    let file = File::open(path).map_err(io_at(path))?;
    BufReader::new(file).read_until(b'\n', &mut first).map_err(io_at(path))?;
    let header = records(path, text(path, &first)?)?.pop().map(|r| r.fields);
    let Some(header) = header else {
        return Err(format_error(path, format!("line 1: empty file, expected a header with {}", columns.join(","))));
    };
    columns.iter().try_for_each(|c| column(path, &header, c).map(drop))
}

/// A parsed CSV file: its header and the records after it, each at least as wide as the header.
struct Table<'a> {
    path: &'a Path,
    header: Vec<String>,
    rows: Vec<Record>,
}

impl<'a> Table<'a> {
    fn parse(path: &'a Path, bytes: &[u8]) -> Result<Table<'a>, DataError> {
        let mut rows = records(path, text(path, bytes)?)?.into_iter();
        let Some(header) = rows.next() else {
            return Err(format_error(path, "line 1: empty file, expected a header".into()));
        };
        let table = Table { path, header: header.fields, rows: rows.collect() };
        if let Some(short) = table.rows.iter().find(|r| r.fields.len() < table.header.len()) {
            let reason = format!("{} fields, but the header has {}", short.fields.len(), table.header.len());
            return Err(table.error(short.line, reason));
        }
        Ok(table)
    }

    fn column(&self, name: &str) -> Result<usize, DataError> {
        column(self.path, &self.header, name)
    }

    fn error(&self, line: usize, reason: String) -> DataError {
        format_error(self.path, format!("line {line}: {reason}"))
    }

    /// The `symbol_id` of `row`, in column `col`.
    fn symbol_id(&self, row: &Record, col: usize) -> Result<i64, DataError> {
        let field = row.fields[col].trim();
        field.parse().map_err(|_| self.error(row.line, format!("symbol_id '{field}' is not an integer")))
    }
}

/// symbols.csv: which label each `symbol_id` has (its row, counting from 0).
struct Symbols {
    labels: HashMap<i64, u16>,
    count: usize,
}

impl Symbols {
    fn parse(path: &Path, bytes: &[u8]) -> Result<Symbols, DataError> {
        let table = Table::parse(path, bytes)?;
        let id_col = table.column("symbol_id")?;
        table.column("latex")?;
        if table.rows.is_empty() {
            return Err(format_error(path, "no symbols: the file has a header only".into()));
        }
        if table.rows.len() > usize::from(u16::MAX) + 1 {
            return Err(format_error(path, format!("{} symbols, labels are u16 (at most 65536)", table.rows.len())));
        }
        let mut labels = HashMap::new();
        let mut lines = HashMap::new();
        for (label, row) in table.rows.iter().enumerate() {
            let id = table.symbol_id(row, id_col)?;
            if let Some(first) = lines.insert(id, row.line) {
                return Err(table.error(row.line, format!("duplicate symbol_id {id} (already on line {first})")));
            }
            // At most 65536 rows, so the label fits.
            labels.insert(id, label as u16);
        }
        Ok(Symbols { labels, count: table.rows.len() })
    }
}

/// One image of a split: the csv line that names it, its file, and its label.
struct Image {
    line: usize,
    png: PathBuf,
    label: u16,
}

/// A split's csv file (its bytes go into the cache key) and the images it lists, in order.
struct Listing {
    csv: PathBuf,
    bytes: Vec<u8>,
    images: Vec<Image>,
}

impl Listing {
    fn read(dir: &Path, fold_dir: &Path, name: &str, symbols: &Symbols) -> Result<Listing, DataError> {
        let csv = fold_dir.join(name);
        require(&csv, Entry::File)?;
        let bytes = read(&csv)?;
        let table = Table::parse(&csv, &bytes)?;
        let (path_col, id_col) = (table.column("path")?, table.column("symbol_id")?);
        let image = |row: &Record| {
            let id = table.symbol_id(row, id_col)?;
            let Some(&label) = symbols.labels.get(&id) else {
                return Err(table.error(row.line, format!("unknown symbol_id {id} (not in symbols.csv)")));
            };
            let png = resolve(dir, fold_dir, &row.fields[path_col]).ok_or_else(|| {
                let reason = format!(
                    "image '{}' not found, neither relative to {} nor to {}",
                    row.fields[path_col],
                    fold_dir.display(),
                    dir.display()
                );
                table.error(row.line, reason)
            })?;
            Ok(Image { line: row.line, png, label })
        };
        let images = table.rows.iter().map(image).collect::<Result<Vec<_>, DataError>>()?;
        if images.is_empty() {
            return Err(format_error(&csv, "no images: the split is empty (a header only)".into()));
        }
        Ok(Listing { csv, bytes, images })
    }
}

/// The release's fold csvs name images relative to the fold folder (`../../hasy-data/…`); a
/// path relative to the release folder is accepted too.
fn resolve(dir: &Path, fold_dir: &Path, path: &str) -> Option<PathBuf> {
    [fold_dir.join(path), dir.join(path)].into_iter().find(|p| p.is_file())
}

/// The bytes of every image of `list`, in order (read in parallel: they are many small files).
fn read_images(list: &Listing) -> Result<Vec<Vec<u8>>, DataError> {
    let read: Vec<_> = list.images.par_iter().map(|i| read(&i.png)).collect();
    // Collected in order first, so that the error reported is always the first one.
    read.into_iter().collect()
}

/// Lower-case hex SHA-256 over the version tag, symbols.csv, then for each split its csv and
/// its images in order; each part is preceded by its length so that no two inputs run together.
fn cache_key(symbols: &[u8], splits: [(&Listing, &[Vec<u8>]); 2]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_VERSION);
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part(symbols);
    splits.iter().for_each(|(list, _)| part(&list.bytes));
    splits.iter().flat_map(|(_, pngs)| pngs.iter()).for_each(|png| part(png));
    checksums::hex(&hasher.finalize())
}

/// The split of `list` from the cache entry `<cache>/<file>`, checked against its record (see
/// [`crate::cache`]); decoded from `pngs` when it is missing, and again, with the warning
/// returned, when it is damaged.
fn cached_split(
    cache: &Path,
    file: &str,
    list: &Listing,
    pngs: &[Vec<u8>],
    source: &str,
) -> Result<(Split, Option<String>), DataError> {
    let len = list.images.len() * DIM;
    let labels: Vec<u16> = list.images.iter().map(|i| i.label).collect();
    let entry = cache::open(&cache.join(file), Some(len as u64), source, |out| out.write(&decode_split(list, pngs)?))?;
    Ok((Split::mapped(entry.map, 0, labels, DIM), entry.warning))
}

/// Decodes every image of `list` (in parallel, each into its own slot, so the result is in csv
/// order whatever the thread count), or the first failure in csv order.
fn decode_split(list: &Listing, pngs: &[Vec<u8>]) -> Result<Vec<u8>, DataError> {
    let mut pixels = vec![0u8; pngs.len() * DIM];
    let results: Vec<Result<(), DataError>> = pixels
        .par_chunks_mut(DIM)
        .zip(&list.images)
        .zip(pngs)
        .map(|((out, image), bytes)| {
            decode(bytes, out).map_err(|reason| {
                let reason = format!("{reason} (named on line {} of {})", image.line, list.csv.display());
                format_error(&image.png, reason)
            })
        })
        .collect();
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(pixels)
}

/// Decodes one 32 × 32 PNG into `out` (1024 grey bytes). Palettes, bit depths below 8 and 16-bit
/// samples are expanded to 8-bit channels by the decoder; colour and alpha become grey here.
fn decode(bytes: &[u8], out: &mut [u8]) -> Result<(), String> {
    let not_png = |e: png::DecodingError| format!("does not decode as a PNG: {e}");
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(not_png)?;
    let (width, height) = (reader.info().width, reader.info().height);
    if (width, height) != (SIDE, SIDE) {
        return Err(format!("image of {width}×{height} pixels, HASYv2 images are {SIDE}×{SIDE}"));
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(not_png)?;
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("palette image was not expanded by the decoder".into()),
    };
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(format!("{:?}-bit samples were not expanded to 8 bits by the decoder", frame.bit_depth));
    }
    for (row, out_row) in buf.chunks(frame.line_size).zip(out.chunks_exact_mut(SIDE as usize)) {
        for (px, o) in row.chunks_exact(channels).zip(out_row) {
            *o = to_grey(px);
        }
    }
    Ok(())
}

/// One pixel of 1 to 4 channels (grey, grey+alpha, RGB, RGBA) as grey: alpha composited over
/// white (the background of HASYv2), then equal channels kept, else the Rec. 601 luma.
fn to_grey(px: &[u8]) -> u8 {
    let (colour, alpha) = match px.len() {
        2 | 4 => (&px[..px.len() - 1], u32::from(px[px.len() - 1])),
        _ => (px, 255),
    };
    // round((c·a + 255·(255 − a)) / 255), at most 255.
    let over_white = |c: u8| ((u32::from(c) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
    match *colour {
        [r, g, b] => {
            let (r, g, b) = (over_white(r), over_white(g), over_white(b));
            if r == g && g == b {
                r
            } else {
                (0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)).round() as u8
            }
        }
        _ => over_white(colour[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use png::ColorType;

    const IDS: [i64; 3] = [31, 77, 12];

    /// A PNG of `width × height` 8-bit pixels of `color`, with `palette` for indexed images.
    fn encode(width: u32, height: u32, color: ColorType, palette: Option<Vec<u8>>, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(p) = palette {
            enc.set_palette(p);
        }
        enc.write_header().unwrap().write_image_data(data).unwrap();
        out
    }

    fn grey_png(seed: u8) -> (Vec<u8>, Vec<u8>) {
        let px: Vec<u8> = (0..DIM).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect();
        (encode(SIDE, SIDE, ColorType::Grayscale, None, &px), px)
    }

    /// A palette image: entries white, black, grey 100 and pure red (luma 76).
    fn palette_png() -> (Vec<u8>, Vec<u8>) {
        let palette = vec![255, 255, 255, 0, 0, 0, 100, 100, 100, 255, 0, 0];
        let idx: Vec<u8> = (0..DIM).map(|i| (i % 4) as u8).collect();
        let grey = idx.iter().map(|&i| [255, 0, 100, 76][usize::from(i)]).collect();
        (encode(SIDE, SIDE, ColorType::Indexed, Some(palette), &idx), grey)
    }

    /// An RGB image: equal channels (kept) and unequal ones (luma).
    fn rgb_png() -> (Vec<u8>, Vec<u8>) {
        let colours: [([u8; 3], u8); 3] = [([9, 9, 9], 9), ([0, 255, 0], 150), ([10, 20, 200], 38)];
        let rgb: Vec<u8> = (0..DIM).flat_map(|i| colours[i % 3].0).collect();
        let grey = (0..DIM).map(|i| colours[i % 3].1).collect();
        (encode(SIDE, SIDE, ColorType::Rgb, None, &rgb), grey)
    }

    /// A release with symbols 31, 77, 12 (labels 0, 1, 2; the latex fields quoted, one with
    /// commas and one with doubled quotes), images 0–5 in fold-1/train.csv and 6–8 in test.csv
    /// (image i has symbol IDS[i % 3]; image 4 is a palette image, 7 an RGB one, 8 is named
    /// relative to the release folder), and an empty fold-3 folder. Returns the folder and the
    /// expected pixels of each image.
    fn fixture() -> (tempfile::TempDir, Vec<Vec<u8>>) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fold = dir.join("classification-task/fold-1");
        fs::create_dir_all(&fold).unwrap();
        fs::create_dir_all(dir.join("classification-task/fold-3")).unwrap();
        fs::create_dir_all(dir.join("hasy-data")).unwrap();
        let mut pixels = Vec::new();
        let mut rows = Vec::new();
        for i in 0..9 {
            let (png, px) = match i {
                4 => palette_png(),
                7 => rgb_png(),
                _ => grey_png(i as u8 * 30),
            };
            fs::write(dir.join(format!("hasy-data/v2-{i:05}.png")), png).unwrap();
            pixels.push(px);
            let prefix = if i == 8 { "" } else { "../../" };
            rows.push(format!("{prefix}hasy-data/v2-{i:05}.png,{},\"\\alpha, x\",{}\n", IDS[i % 3], 100 + i));
        }
        let header = "path,symbol_id,latex,user_id\n";
        fs::write(dir.join("hasy-data-labels.csv"), format!("{header}{}", rows.concat())).unwrap();
        fs::write(fold.join("train.csv"), format!("{header}{}", rows[..6].concat())).unwrap();
        fs::write(fold.join("test.csv"), format!("{header}{}", rows[6..].concat())).unwrap();
        let symbols = "symbol_id,latex,training_samples,test_samples\n\
                       31,A,2,1\r\n77,\"\\{,\\}\",2,1\n12,\"say \"\"hi\"\"\",2,1\n";
        fs::write(dir.join("symbols.csv"), symbols).unwrap();
        (tmp, pixels)
    }

    /// The cache entries (not their records), sorted.
    fn cache_files(cache: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(cache.join(NAME))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.ends_with(".check"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn good_fold_loads() {
        let (tmp, pixels) = fixture();
        let data = load(tmp.path(), 1, &tmp.path().join("cache")).unwrap();
        assert_eq!((data.name.as_str(), data.classes, data.input_dim), ("hasyv2", 3, 1024));
        assert_eq!((data.train.len(), data.test.len(), data.train.dim()), (6, 3, 1024));
        assert_eq!(data.train.labels(), &[0, 1, 2, 0, 1, 2]);
        assert_eq!(data.test.labels(), &[0, 1, 2]);
        let images = (0..6).map(|i| data.train.image(i)).chain((0..3).map(|i| data.test.image(i)));
        for (i, (got, want)) in images.zip(&pixels).enumerate() {
            assert_eq!(got, &want[..], "image {i}");
        }
        assert_eq!(&data.train.image(4)[..4], &[255, 0, 100, 76]);
        assert_eq!(&data.test.image(1)[..3], &[9, 150, 38]);
        assert!(data
            .source
            .ends_with(": fold 1 (hasy-data-labels.csv, symbols.csv, classification-task/fold-1/{train,test}.csv)"));
        assert!(data.warnings.is_empty());
    }

    #[test]
    fn cache_is_written_once_reused_and_keyed_by_the_images() {
        let (tmp, pixels) = fixture();
        let cache = tmp.path().join("cache");
        load(tmp.path(), 1, &cache).unwrap();
        let names = cache_files(&cache);
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].ends_with("-fold-1-test.u8") && names[1].ends_with("-fold-1-train.u8"), "{names:?}");
        assert_eq!(names[0][..16], names[1][..16]);
        let train = cache.join(NAME).join(&names[1]);
        assert_eq!(fs::read(&train).unwrap(), pixels[..6].concat());
        let mtime = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
        let before = mtime(&train);
        std::thread::sleep(std::time::Duration::from_millis(20));
        load(tmp.path(), 1, &cache).unwrap();
        assert_eq!(mtime(&train), before);
        // Another image gives another key.
        fs::write(tmp.path().join("hasy-data/v2-00002.png"), grey_png(1).0).unwrap();
        let data = load(tmp.path(), 1, &cache).unwrap();
        assert_eq!(data.train.image(2), &grey_png(1).1[..]);
        assert_eq!(cache_files(&cache).len(), 4);
    }

    #[test]
    fn a_damaged_cache_entry_is_rebuilt_with_a_warning() {
        let (tmp, pixels) = fixture();
        let cache = tmp.path().join("cache");
        load(tmp.path(), 1, &cache).unwrap();
        let names = cache_files(&cache);
        let (test, train) = (cache.join(NAME).join(&names[0]), cache.join(NAME).join(&names[1]));
        for (entry, split) in [(&train, "train"), (&test, "test")] {
            for (what, damage, says) in crate::cache::tests::damages() {
                damage(entry);
                let data = load(tmp.path(), 1, &cache).unwrap_or_else(|e| panic!("{split}, {what}: {e}"));
                let images = (0..6).map(|i| data.train.image(i)).chain((0..3).map(|i| data.test.image(i)));
                assert!(images.zip(&pixels).all(|(got, want)| got == &want[..]), "{split}, {what}: pixels");
                let [warning] = &data.warnings[..] else { panic!("{split}, {what}: {:?}", data.warnings) };
                assert!(warning.starts_with(&format!("cache file {}: ", entry.display())), "{what}: {warning}");
                assert!(warning.contains(says), "{split}, {what}: {warning}");
                let from = format!("; rebuilt from the HASYv2 release in {}", tmp.path().display());
                assert!(warning.ends_with(&from), "{split}, {what}: {warning}");
                assert!(load(tmp.path(), 1, &cache).unwrap().warnings.is_empty(), "{split}, {what}: healed");
            }
        }
        assert_eq!(cache_files(&cache), names, "rebuilt in place, under the same names");
    }

    #[test]
    fn quoted_fields_parse() {
        let text = "a,\"\\{,\\}\",\"say \"\"hi\"\"\",\r\n\n\"two\nlines\",x\n\"\"";
        let got = records(Path::new("t.csv"), text).unwrap();
        let row = |line: usize, f: &[&str]| Record { line, fields: f.iter().map(|s| s.to_string()).collect() };
        assert_eq!(got, vec![row(1, &["a", "\\{,\\}", "say \"hi\"", ""]), row(3, &["two\nlines", "x"]), row(5, &[""])]);
        let e = records(Path::new("t.csv"), "a\n\"open,b\nc").unwrap_err().to_string();
        assert!(e.contains("t.csv") && e.contains("line 2") && e.contains("never closed"), "{e}");
        let e = records(Path::new("t.csv"), "a\n\"q\"x,b").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("after the closing quote"), "{e}");
    }

    #[test]
    fn alpha_and_16_bit_images_become_grey() {
        let decoded = |png: &[u8]| {
            let mut out = vec![0; DIM];
            decode(png, &mut out).unwrap();
            out
        };
        let ga: Vec<u8> = (0..DIM).flat_map(|i| [[0, 255], [0, 0], [100, 128]][i % 3]).collect();
        let out = decoded(&encode(SIDE, SIDE, ColorType::GrayscaleAlpha, None, &ga));
        assert_eq!(&out[..3], &[0, 255, 177]);
        let rgba: Vec<u8> = (0..DIM).flat_map(|i| [[255, 0, 0, 255], [50, 50, 50, 0]][i % 2]).collect();
        assert_eq!(&decoded(&encode(SIDE, SIDE, ColorType::Rgba, None, &rgba))[..2], &[76, 255]);
        let mut wide = Vec::new();
        let mut enc = png::Encoder::new(&mut wide, SIDE, SIDE);
        enc.set_color(ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Sixteen);
        enc.write_header().unwrap().write_image_data(&[0x12, 0x34].repeat(DIM)).unwrap();
        assert!(decoded(&wide).iter().all(|&p| p == 0x12));
    }

    const TRAIN: &str = "classification-task/fold-1/train.csv";
    const TEST: &str = "classification-task/fold-1/test.csv";

    /// Replaces line `n` (1-based) of `dir/file` with `text`.
    fn edit(dir: &Path, file: &str, n: usize, text: &str) {
        let path = dir.join(file);
        let mut lines: Vec<String> = fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
        lines[n - 1] = text.into();
        fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn every_malformed_release_is_refused_with_file_and_line() {
        type Break = fn(&Path);
        fn odd_size() -> Vec<u8> {
            encode(28, 30, ColorType::Grayscale, None, &[0; 28 * 30])
        }
        let cases: Vec<(Break, u32, &[&str])> = vec![
            (|_| {}, 0, &["fold 0 does not exist", "1 to 10"]),
            (|_| {}, 11, &["fold 11 does not exist"]),
            (|_| {}, 2, &["fold-2", "no such folder", "folds present are 1, 3"]),
            (
                |d| fs::remove_file(d.join("hasy-data-labels.csv")).unwrap(),
                1,
                &["hasy-data-labels.csv", "no such file"],
            ),
            (|d| fs::remove_file(d.join("symbols.csv")).unwrap(), 1, &["symbols.csv", "no such file"]),
            (|d| fs::remove_dir_all(d.join("hasy-data")).unwrap(), 1, &["hasy-data", "no such folder"]),
            (|d| fs::remove_dir_all(d.join("classification-task")).unwrap(), 1, &["classification-task", "no such"]),
            (|d| fs::remove_file(d.join(TEST)).unwrap(), 1, &["test.csv", "no such file"]),
            (
                |d| edit(d, "hasy-data-labels.csv", 1, "path,latex"),
                1,
                &["hasy-data-labels.csv", "line 1", "'symbol_id'"],
            ),
            (
                |d| fs::write(d.join("hasy-data-labels.csv"), "").unwrap(),
                1,
                &["hasy-data-labels.csv", "line 1", "empty"],
            ),
            (|d| edit(d, "symbols.csv", 1, "symbol_id,name"), 1, &["symbols.csv", "line 1", "'latex'"]),
            (|d| edit(d, "symbols.csv", 3, "x7,B,1,1"), 1, &["symbols.csv", "line 3", "'x7' is not an integer"]),
            (
                |d| edit(d, "symbols.csv", 4, "31,C,1,1"),
                1,
                &["symbols.csv", "line 4", "symbol_id 31 (already on line 2)"],
            ),
            (|d| edit(d, "symbols.csv", 2, "31,A"), 1, &["symbols.csv", "line 2", "2 fields, but the header has 4"]),
            (|d| edit(d, "symbols.csv", 4, "12,\"say,1,1"), 1, &["symbols.csv", "line 4", "never closed"]),
            (|d| fs::write(d.join("symbols.csv"), "symbol_id,latex\n").unwrap(), 1, &["symbols.csv", "no symbols"]),
            (|d| edit(d, TRAIN, 1, "file,symbol_id,latex,user_id"), 1, &["train.csv", "line 1", "'path'"]),
            (|d| edit(d, TRAIN, 3, "hasy-data/v2-00001.png,77"), 1, &["train.csv", "line 3", "2 fields"]),
            (
                |d| edit(d, TEST, 4, "hasy-data/v2-00008.png,1.5,x,1"),
                1,
                &["test.csv", "line 4", "'1.5' is not an integer"],
            ),
            (
                |d| edit(d, TRAIN, 5, "hasy-data/v2-00003.png,99999,x,1"),
                1,
                &["train.csv", "line 5", "unknown symbol_id 99999"],
            ),
            (
                |d| edit(d, TRAIN, 2, "hasy-data/none.png,31,x,1"),
                1,
                &["train.csv", "line 2", "'hasy-data/none.png' not found"],
            ),
            (|d| fs::write(d.join(TEST), "path,symbol_id\n").unwrap(), 1, &["test.csv", "the split is empty"]),
            (
                |d| {
                    let rows = "../../hasy-data/v2-00000.png,31\n../../hasy-data/v2-00003.png,31\n";
                    fs::write(d.join(TRAIN), format!("path,symbol_id\n{rows}")).unwrap()
                },
                1,
                &["train.csv", "all 2 training labels are 0: a single class"],
            ),
            (
                |d| fs::write(d.join("hasy-data/v2-00002.png"), "no png").unwrap(),
                1,
                &["v2-00002.png", "does not decode", "line 4 of", "train.csv"],
            ),
            (
                |d| fs::write(d.join("hasy-data/v2-00007.png"), odd_size()).unwrap(),
                1,
                &["v2-00007.png", "28×30", "line 3 of", "test.csv"],
            ),
        ];
        for (i, (breaker, fold, want)) in cases.into_iter().enumerate() {
            let (tmp, _) = fixture();
            breaker(tmp.path());
            let e = load(tmp.path(), fold, &tmp.path().join("cache")).unwrap_err().to_string();
            assert!(want.iter().all(|w| e.contains(w)), "case {i}: {e}");
        }
    }
}
