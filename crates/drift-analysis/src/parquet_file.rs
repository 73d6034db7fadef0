//! Writing one Arrow record batch as a Parquet file, atomically, with the run's configuration in
//! the key-value metadata.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
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

/// Writes `columns` (named by `fields`) to `path` as Parquet, Snappy-compressed, with `metadata`:
/// one row group whose columns are encoded in parallel.
pub fn write_table(
    path: &Path,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    metadata: &[(String, String)],
) -> Result<(), AnalysisError> {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| AnalysisError::Encode { path: path.to_path_buf(), message: e.to_string() })?;
    let kv = metadata.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
    let mut props = WriterProperties::builder().set_compression(Compression::SNAPPY).set_key_value_metadata(Some(kv));
    for (column, encoding) in ENCODINGS {
        let column = ColumnPath::from(column);
        props = props.set_column_dictionary_enabled(column.clone(), false).set_column_encoding(column, encoding);
    }
    let props = props.build();
    let encode_error = |e: ParquetError| std::io::Error::other(e.to_string());
    write_atomic(path, |out| {
        let writer = ArrowWriter::try_new(out.by_ref(), schema.clone(), Some(props)).map_err(encode_error)?;
        let (mut file, factory) = writer.into_serialized_writer().map_err(encode_error)?;
        let writers = factory.create_column_writers(0).map_err(encode_error)?;
        // Our tables are flat: one Parquet leaf, so one column writer, per field.
        let jobs: Vec<_> = writers.into_iter().zip(batch.columns().iter().zip(schema.fields().iter())).collect();
        let chunks = jobs
            .into_par_iter()
            .map(|(mut writer, (array, field))| {
                for leaf in compute_leaves(field, array)? {
                    writer.write(&leaf)?;
                }
                writer.close()
            })
            .collect::<Result<Vec<_>, ParquetError>>()
            .map_err(encode_error)?;
        let mut row_group = file.next_row_group().map_err(encode_error)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group).map_err(encode_error)?;
        }
        row_group.close().map_err(encode_error)?;
        file.close().map_err(encode_error)?;
        Ok(())
    })
}
