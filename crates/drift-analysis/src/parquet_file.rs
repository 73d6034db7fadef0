//! Writing one Arrow record batch as a Parquet file, atomically, with the run's configuration in
//! the key-value metadata.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::AnalysisError;

/// Writes `bytes` through `write` into a temporary file beside `path`, then renames it over
/// `path`: a reader sees the old file or the new one, never half of one. The temporary is
/// removed if anything fails.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), AnalysisError> {
    let tmp = temporary_name(path);
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp)?);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        AnalysisError::Io { path: path.to_path_buf(), source }
    })
}

/// `.NAME.tmp-PID` in the same folder (a rename within one folder is atomic).
fn temporary_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes the temporaries a killed writer left in `dir` (not in its subfolders): files named
/// like [`temporary_name`]'s. Only to be called by the one process that owns `dir`.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Encodings chosen for the columns of the large tables (snapshots have a row per parameter):
/// delta encoding for the slowly counting integers (smaller than a dictionary and no hashing),
/// byte-stream split for the weights (Snappy then finds the repeated exponent bytes).
/// Every other column keeps the default: dictionary, falling back to plain.
const ENCODINGS: [(&str, Encoding); 4] = [
    ("layer", Encoding::DELTA_BINARY_PACKED),
    ("row", Encoding::DELTA_BINARY_PACKED),
    ("col", Encoding::DELTA_BINARY_PACKED),
    ("w", Encoding::BYTE_STREAM_SPLIT),
];

/// The writer settings of every table: Snappy, [`ENCODINGS`], and `metadata` in the footer.
fn properties(metadata: &[(String, String)]) -> WriterProperties {
    let kv = metadata.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
    let mut props = WriterProperties::builder().set_compression(Compression::SNAPPY).set_key_value_metadata(Some(kv));
    for (column, encoding) in ENCODINGS {
        let column = ColumnPath::from(column);
        props = props.set_column_dictionary_enabled(column.clone(), false).set_column_encoding(column, encoding);
    }
    props.build()
}

fn encode_error(e: ParquetError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Column chunks encoded once and spliced into every file that repeats them: the `layer`, `kind`,
/// `row` and `col` of a run's snapshots are the same at every epoch, only `w` changes, and
/// encoding them was most of a snapshot's cost (the 670 000 `kind` strings of a W = 512 network
/// alone were hashed into a dictionary each time).
pub struct FixedColumns {
    fields: Vec<Field>,
    /// A Parquet file holding just these columns, and the close results of its column chunks
    /// (offsets into `file`) to splice them from.
    file: Bytes,
    chunks: Vec<ColumnCloseResult>,
}

impl FixedColumns {
    /// Encodes `columns` (named by `fields`) as [`write_table`] would.
    pub fn encode(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<FixedColumns, ParquetError> {
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields.clone())), columns)?;
        let mut file = Vec::new();
        // The metadata as the writer built it (statistics and all), not as read back.
        let meta = encode(&mut file, None, &batch, properties(&[]))?;
        let row_group = meta.row_group(0);
        let chunks = (0..row_group.num_columns())
            .map(|c| ColumnCloseResult {
                bytes_written: row_group.column(c).compressed_size() as u64,
                rows_written: row_group.num_rows() as u64,
                metadata: row_group.column(c).clone(),
                bloom_filter: None,
                column_index: meta.page_index().and_then(|index| index.column_index(0, c)).cloned(),
                offset_index: meta.page_index().and_then(|index| index.offset_index(0, c)).cloned(),
            })
            .collect();
        Ok(FixedColumns { fields, file: Bytes::from(file), chunks })
    }

    /// The number of rows of each column.
    pub fn rows(&self) -> usize {
        self.chunks.first().map_or(0, |c| c.rows_written as usize)
    }
}

/// Writes `columns` (named by `fields`) to `path` as Parquet, Snappy-compressed, with `metadata`:
/// one row group whose columns are encoded in parallel.
pub fn write_table(
    path: &Path,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    metadata: &[(String, String)],
) -> Result<(), AnalysisError> {
    write_spliced(path, None, fields, columns, metadata)
}

/// As [`write_table`], with `fixed`'s columns first, spliced in as they were encoded, then
/// `columns` (named by `fields`), which must have as many rows.
pub fn write_table_after(
    path: &Path,
    fixed: &FixedColumns,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    metadata: &[(String, String)],
) -> Result<(), AnalysisError> {
    write_spliced(path, Some(fixed), fields, columns, metadata)
}

fn write_spliced(
    path: &Path,
    fixed: Option<&FixedColumns>,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    metadata: &[(String, String)],
) -> Result<(), AnalysisError> {
    let encode_failed = |message: String| AnalysisError::Encode { path: path.to_path_buf(), message };
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| encode_failed(e.to_string()))?;
    if let Some(fixed) = fixed.filter(|f| f.rows() != batch.num_rows()) {
        return Err(encode_failed(format!("{} rows after {} spliced ones", batch.num_rows(), fixed.rows())));
    }
    let props = properties(metadata);
    write_atomic(path, |out| encode(out.by_ref(), fixed, &batch, props).map(drop).map_err(encode_error))
}

/// One row group to `out`: `fixed`'s columns spliced in, then those of `batch` encoded in
/// parallel. Returns the file's metadata.
fn encode(
    out: impl Write + Send,
    fixed: Option<&FixedColumns>,
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<ParquetMetaData, ParquetError> {
    let leading = fixed.map_or(&[][..], |f| &f.fields[..]);
    let own = batch.schema();
    let schema = Arc::new(Schema::new(
        leading.iter().cloned().chain(own.fields().iter().map(|f| f.as_ref().clone())).collect::<Vec<_>>(),
    ));
    let writer = ArrowWriter::try_new(out, schema, Some(props))?;
    let (mut file, factory) = writer.into_serialized_writer()?;
    let writers = factory.create_column_writers(0)?;
    // Our tables are flat: one Parquet leaf, so one column writer, per field; the spliced
    // columns' writers go unused.
    let jobs: Vec<_> =
        writers.into_iter().skip(leading.len()).zip(batch.columns().iter().zip(own.fields().iter())).collect();
    let chunks = jobs
        .into_par_iter()
        .map(|(mut writer, (array, field))| {
            for leaf in compute_leaves(field, array)? {
                writer.write(&leaf)?;
            }
            writer.close()
        })
        .collect::<Result<Vec<_>, ParquetError>>()?;
    let mut row_group = file.next_row_group()?;
    if let Some(fixed) = fixed {
        for chunk in &fixed.chunks {
            row_group.append_column(&fixed.file, chunk.clone())?;
        }
    }
    for chunk in chunks {
        chunk.append_to_row_group(&mut row_group)?;
    }
    row_group.close()?;
    file.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{
        snapshot_fields, snapshot_index_columns, snapshot_index_fields, snapshot_value_fields, snapshot_values,
    };
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn read(path: &Path) -> RecordBatch {
        let file = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().with_batch_size(1 << 20).build().unwrap();
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    /// A snapshot with the index columns spliced in is the file written in one go, byte for byte,
    /// for two shapes of network; a column of another length is refused.
    #[test]
    fn spliced_columns_give_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = [("drift.epoch".to_string(), "3".to_string())];
        for shapes in [vec![(3usize, 4usize), (2, 3)], vec![(64, 784), (10, 64)]] {
            let params: Vec<(Vec<f32>, Vec<f32>)> = shapes
                .iter()
                .map(|&(o, i)| {
                    ((0..o * i).map(|x| (x as f32 * 0.37).sin()).collect(), (0..o).map(|x| x as f32).collect())
                })
                .collect();
            let values: Vec<(&[f32], &[f32])> = params.iter().map(|(w, b)| (&w[..], &b[..])).collect();
            let mut columns = snapshot_index_columns(&shapes);
            columns.push(snapshot_values(&values));
            let whole = dir.path().join("whole.parquet");
            write_table(&whole, snapshot_fields(), columns, &metadata).unwrap();

            let index = FixedColumns::encode(snapshot_index_fields(), snapshot_index_columns(&shapes)).unwrap();
            let spliced = dir.path().join("spliced.parquet");
            write_table_after(&spliced, &index, snapshot_value_fields(), vec![snapshot_values(&values)], &metadata)
                .unwrap();
            assert_eq!(read(&spliced), read(&whole), "{shapes:?}");
            assert_eq!(fs::read(&spliced).unwrap(), fs::read(&whole).unwrap(), "{shapes:?}");

            let short = snapshot_values(&values[..1]);
            let err = write_table_after(&spliced, &index, snapshot_value_fields(), vec![short], &metadata);
            assert!(matches!(err, Err(AnalysisError::Encode { .. })), "{shapes:?}: {err:?}");
        }
    }
}
