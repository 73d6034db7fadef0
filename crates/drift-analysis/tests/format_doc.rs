//! `docs/format.md` against the code: its column tables are the tables' `fields()` (names, order,
//! types, nullability), its metadata keys are `TrainConfig::result_keys` plus the run id (and the
//! epoch in snapshots), its format version and run-id example are what the code gives, and the
//! files a run actually writes have the documented columns and metadata.
//!
//! The page's tables have a strict shape, which this test parses:
//!
//! - a column table comes right under a heading `### <file>` (`### runs.parquet`,
//!   `### snapshots/epoch=NNNNNN.parquet`) and has the header `| column | type | null | meaning |`;
//!   each row is ``| `name` | type | yes-or-no | meaning |``, the type spelled as [`doc_type`] does;
//! - the metadata table has the header `| key | files | value |`; each row is
//!   ``| `drift.key` | files | value |``, files being `all`, `snapshots`, or the optimisers
//!   whose runs carry the key in all their files (`momentum, adam`);
//! - the type table has the header `| type | Arrow | Parquet (physical, logical) | DuckDB | Polars |`.
//!
//! No cell may contain a `|`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Field};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use drift_analysis::tables::{
    snapshot_fields, ConditionalRow, DeviationRow, Hist2dRow, HistoryRow, RunRow, SpectrumRow, Table,
};
use drift_analysis::{RunMeta, RunWriter, SnapshotSchedule};
use drift_data::synthetic::SyntheticConfig;
use drift_data::{DatasetSpec, LoadOptions};
use drift_train::{train, Optimizer, TrainConfig};

const COLUMN_HEADER: &str = "| column | type | null | meaning |";
const METADATA_HEADER: &str = "| key | files | value |";
const TYPE_HEADER: &str = "| type | Arrow | Parquet (physical, logical) | DuckDB | Polars |";
/// The heading of the snapshots' column table, and the name it stands for.
const SNAPSHOT_TABLE: &str = "snapshots/epoch=NNNNNN.parquet";

/// The page's spelling of an Arrow type.
fn doc_type(t: &DataType) -> &'static str {
    match t {
        DataType::Utf8 => "utf8",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt64 => "uint64",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        other => {
            panic!("docs/format.md has no spelling for the Arrow type {other:?}: add one here and to its type table")
        }
    }
}

/// Every documented table in the code: the heading of its column table and its fields.
fn code_tables() -> Vec<(&'static str, Vec<Field>)> {
    vec![
        ("runs.parquet", RunRow::fields()),
        ("history.parquet", HistoryRow::fields()),
        ("deviation.parquet", DeviationRow::fields()),
        ("conditional.parquet", ConditionalRow::fields()),
        ("hist2d.parquet", Hist2dRow::fields()),
        ("spectrum.parquet", SpectrumRow::fields()),
        (SNAPSHOT_TABLE, snapshot_fields()),
    ]
}

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/format.md")
}

fn doc() -> String {
    let path = doc_path();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Markdown table of the page: the heading line above it, its line number and its rows' cells.
struct DocTable {
    heading: String,
    line: usize,
    rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().strip_prefix('|').and_then(|l| l.strip_suffix('|'));
    let inner = inner.unwrap_or_else(|| panic!("not a table row: {line}"));
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// The tables whose header line is exactly `header`, each with the nearest heading above it.
fn tables(doc: &str, header: &str) -> Vec<DocTable> {
    let width = cells(header).len();
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    let (mut heading, mut fenced) = (String::new(), false);
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if line.starts_with('#') && !fenced {
            heading = line.to_string();
        }
        if line != header || fenced {
            i += 1;
            continue;
        }
        let at = i + 1;
        let separator = lines.get(i + 1).map(|l| cells(l)).unwrap_or_default();
        assert!(
            separator.len() == width && separator.iter().all(|c| c.len() >= 3 && c.chars().all(|ch| ch == '-')),
            "docs/format.md:{at}: the header must be followed by a |---| separator of {width} cells"
        );
        i += 2;
        let mut rows = Vec::new();
        while i < lines.len() && lines[i].trim_start().starts_with('|') {
            let row = cells(lines[i]);
            assert_eq!(row.len(), width, "docs/format.md:{}: {width} cells expected: {}", i + 1, lines[i]);
            rows.push(row);
            i += 1;
        }
        found.push(DocTable { heading: heading.clone(), line: at, rows });
    }
    found
}

/// `` `text` `` → `text`; anything else fails.
fn code(cell: &str, line: usize) -> String {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .filter(|c| !c.is_empty() && !c.contains('`'))
        .unwrap_or_else(|| panic!("docs/format.md:{line}: expected a name in backticks, got '{cell}'"))
        .to_string()
}

/// A column as the page or the code has it: `name type null`.
fn column_line(name: &str, ty: &str, nullable: bool) -> String {
    format!("{name} {ty} {}", if nullable { "yes" } else { "no" })
}

/// Fails at the first column where `documented` and `actual` differ, naming it.
fn assert_same_columns(documented: &[String], actual: &[String], what: &str) {
    for (i, (d, a)) in documented.iter().zip(actual).enumerate() {
        assert_eq!(d, a, "{what}: column {} (name type null) is documented as '{d}' but is '{a}'", i + 1);
    }
    if documented.len() != actual.len() {
        let n = documented.len().min(actual.len());
        panic!(
            "{what}: {} columns documented, {} in fact; the first unmatched: documented {:?}, in fact {:?}",
            documented.len(),
            actual.len(),
            documented.get(n),
            actual.get(n)
        );
    }
}

fn field_lines(fields: &[Field]) -> Vec<String> {
    fields.iter().map(|f| column_line(f.name(), doc_type(f.data_type()), f.is_nullable())).collect()
}

/// The documented columns of each table, by the file name of its heading.
fn doc_columns(doc: &str) -> Vec<(String, Vec<String>)> {
    tables(doc, COLUMN_HEADER)
        .into_iter()
        .map(|t| {
            let name = t
                .heading
                .strip_prefix("### ")
                .filter(|n| !n.starts_with('#'))
                .unwrap_or_else(|| {
                    panic!("docs/format.md:{}: a column table must come under a '### <file>' heading", t.line)
                })
                .to_string();
            let columns = t
                .rows
                .iter()
                .map(|row| {
                    let null = match row[2].as_str() {
                        "yes" => true,
                        "no" => false,
                        other => panic!("docs/format.md:{}: {name}: null must be yes or no, got '{other}'", t.line),
                    };
                    column_line(&code(&row[0], t.line), &row[1], null)
                })
                .collect();
            (name, columns)
        })
        .collect()
}

/// The documented metadata keys of a run with `optimizer`, trained to a target loss or not: those
/// of every file, and those of snapshots only.
fn doc_metadata_keys(doc: &str, optimizer: Optimizer, to_target: bool) -> (Vec<String>, Vec<String>) {
    let found = tables(doc, METADATA_HEADER);
    assert_eq!(found.len(), 1, "docs/format.md: one metadata table with the header {METADATA_HEADER}");
    let (mut all, mut snapshots) = (Vec::new(), Vec::new());
    for row in &found[0].rows {
        let key = code(&row[0], found[0].line);
        match row[1].as_str() {
            "all" => all.push(key),
            "snapshots" => snapshots.push(key),
            "runs with a target loss" => {
                if to_target {
                    all.push(key);
                }
            }
            list => {
                let names: Vec<Optimizer> =
                    list.split(", ").map(|n| n.parse()).collect::<Result<_, _>>().unwrap_or_else(|e| {
                        panic!(
                            "docs/format.md:{}: {key}: files must be all, snapshots or optimizers: {e}",
                            found[0].line
                        )
                    });
                if names.contains(&optimizer) {
                    all.push(key);
                }
            }
        }
    }
    (all, snapshots)
}

/// The metadata keys the code writes into every file of a run with `optimizer` and `target_loss`:
/// the run id, then the result keys.
fn code_metadata_keys(optimizer: Optimizer, target_loss: Option<f64>) -> Vec<String> {
    let keys = TrainConfig { optimizer, target_loss, ..TrainConfig::default() }.result_keys(1, "");
    std::iter::once("drift.run_id".to_string()).chain(keys.iter().map(|(k, _)| format!("drift.{k}"))).collect()
}

#[test]
fn every_column_table_is_the_code_schema() {
    let documented = doc_columns(&doc());
    let mut names: Vec<&str> = documented.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = code_tables().iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected, "docs/format.md: one column table per file, no more, no fewer");
    for (name, fields) in code_tables() {
        let (_, columns) = documented.iter().find(|(n, _)| n == name).expect("checked above");
        assert_same_columns(columns, &field_lines(&fields), &format!("docs/format.md, {name}"));
    }
}

#[test]
fn the_type_table_spells_each_arrow_type_of_the_tables() {
    let found = tables(&doc(), TYPE_HEADER);
    assert_eq!(found.len(), 1, "docs/format.md: one type table with the header {TYPE_HEADER}");
    let documented: BTreeSet<(String, String)> =
        found[0].rows.iter().map(|r| (code(&r[0], found[0].line), code(&r[1], found[0].line))).collect();
    let used: BTreeSet<(String, String)> = code_tables()
        .iter()
        .flat_map(|(_, fields)| {
            fields.iter().map(|f| (doc_type(f.data_type()).to_string(), format!("{:?}", f.data_type())))
        })
        .collect();
    assert_eq!(documented, used, "docs/format.md: the type table must list exactly the types the tables use");
}

#[test]
fn the_metadata_keys_are_the_result_keys() {
    for optimizer in Optimizer::ALL {
        for target_loss in [None, Some(0.1)] {
            let (all, snapshots) = doc_metadata_keys(&doc(), optimizer, target_loss.is_some());
            assert_eq!(
                all,
                code_metadata_keys(optimizer, target_loss),
                "docs/format.md: the keys of every file of {optimizer}, target loss {target_loss:?}, in order"
            );
            assert_eq!(snapshots, ["drift.epoch"], "docs/format.md: the keys of snapshots only");
        }
    }
}

#[test]
fn the_format_version_and_the_run_id_example_are_the_code_s() {
    let doc = doc();
    let keys = TrainConfig::default().result_keys(1, "");
    let version = &keys.iter().find(|(k, _)| *k == "format").expect("a format key").1;
    let sentence = format!("The current format version is {version}.");
    assert!(doc.contains(&sentence), "docs/format.md must say: {sentence}");

    let section = doc.split("\n## The run id\n").nth(1).expect("docs/format.md: a section '## The run id'");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/format.md, The run id: a ```text block of the hashed lines");
    let config = TrainConfig {
        dataset: "fashion-mnist".into(),
        width: 256,
        epochs: 5,
        kernel: "portable".parse().unwrap(),
        ..TrainConfig::default()
    };
    let lines: String = config.result_keys(60_000, "").iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert_eq!(block, lines, "docs/format.md, The run id: the hashed lines");
    let id = format!("so its run id is `{}`.", config.run_id(60_000, ""));
    assert!(section.contains(&id), "docs/format.md, The run id: must say {id}");
}

/// The documented table of a file a run wrote, by its path in the run folder.
fn table_of(relative: &str) -> String {
    match relative.strip_prefix("snapshots/") {
        Some(name) => {
            let epoch = name.strip_prefix("epoch=").and_then(|n| n.strip_suffix(".parquet"));
            let six_digits = epoch.is_some_and(|e| e.len() == 6 && e.bytes().all(|b| b.is_ascii_digit()));
            assert!(six_digits, "snapshot file {relative}: expected epoch=NNNNNN.parquet");
            SNAPSHOT_TABLE.to_string()
        }
        None => relative.to_string(),
    }
}

#[test]
fn the_files_a_run_writes_are_as_documented() {
    let mut opts = LoadOptions::new(0);
    opts.synthetic = SyntheticConfig { train: 40, test: 20, classes: 3, side: 4, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
    let config = TrainConfig {
        dataset: "synthetic".into(),
        width: 4,
        epochs: 2,
        batch_size: 16,
        threads: 1,
        optimizer: Optimizer::Adam,
        lr: 0.01,
        ..TrainConfig::default()
    };
    let meta = RunMeta::new(&config, &data, 40, "fixture");
    let expected_kv: Vec<(String, String)> = std::iter::once(("drift.run_id".to_string(), meta.run_id.clone()))
        .chain(meta.result_keys.iter().map(|(k, v)| (format!("drift.{k}"), v.clone())))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut writer =
        RunWriter::create(&drift_analysis::RunDir::new(&dir), meta, "0,last".parse::<SnapshotSchedule>().unwrap(), 4)
            .unwrap();
    train(&config, &data, &mut writer).unwrap();

    let doc = doc();
    let documented = doc_columns(&doc);
    let (doc_keys, doc_snapshot_keys) = doc_metadata_keys(&doc, config.optimizer, config.target_loss.is_some());
    let mut files: Vec<String> = Vec::new();
    for entry in fs::read_dir(&dir).unwrap().chain(fs::read_dir(dir.join("snapshots")).unwrap()) {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push(path.strip_prefix(&dir).unwrap().to_string_lossy().into_owned());
        }
    }
    files.sort();
    assert_eq!(files.iter().filter(|f| f.starts_with("snapshots/")).count(), 2, "{files:?}");
    let written: BTreeSet<String> = files.iter().map(|f| table_of(f)).collect();
    let tables: BTreeSet<String> = documented.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(written, tables, "the Parquet files of a finished run are the documented tables");

    for file in &files {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join(file)).unwrap()).unwrap();
        let (_, columns) = documented.iter().find(|(n, _)| *n == table_of(file)).unwrap();
        let fields: Vec<Field> = builder.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        assert_same_columns(columns, &field_lines(&fields), &format!("{file} as written"));

        let kv: Vec<(String, String)> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kv| kv.iter().map(|e| (e.key.clone(), e.value.clone().unwrap_or_default())).collect())
            .unwrap_or_default();
        let others: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).filter(|k| !k.starts_with("drift.")).collect();
        assert_eq!(others, ["ARROW:schema"], "{file}: the metadata besides drift.*");
        let drift: Vec<(String, String)> = kv.into_iter().filter(|(k, _)| k.starts_with("drift.")).collect();
        let mut want_keys = doc_keys.clone();
        let mut want = expected_kv.clone();
        if let Some(name) = file.strip_prefix("snapshots/") {
            want_keys.extend(doc_snapshot_keys.iter().cloned());
            let epoch: u32 = name["epoch=".len()..name.len() - ".parquet".len()].parse().unwrap();
            want.push(("drift.epoch".into(), epoch.to_string()));
        }
        let keys: Vec<&String> = drift.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, want_keys.iter().collect::<Vec<_>>(), "{file}: the documented drift.* keys, in order");
        assert_eq!(drift, want, "{file}: the drift.* values");
    }
}
