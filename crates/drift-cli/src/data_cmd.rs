//! `drift data info|verify|prepare NAME`.

use drift_data::{DatasetSpec, LoadOptions};

use crate::args::{DataAction, DataArgs, DataTarget};
use crate::bad_input;

fn options(target: &DataTarget) -> anyhow::Result<(DatasetSpec, LoadOptions)> {
    let spec: DatasetSpec = target.name.parse().map_err(|e| bad_input(format!("data set '{}': {e}", target.name)))?;
    let mut opts = LoadOptions::new(0);
    opts.data_dir = target.data_dir.clone();
    Ok((spec, opts))
}

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.action {
        DataAction::Info(target) | DataAction::Verify(target) if target.name == "synthetic" => {
            println!("synthetic: generated from the run seed; no files");
            Ok(())
        }
        // HASYv2 has no pinned checksums: checking it means reading every CSV line and image.
        DataAction::Info(target) | DataAction::Verify(target) if target.name == "hasyv2" => {
            println!("hasyv2: no official SHA-256 is pinned; checking every CSV line and image of fold 1");
            prepare(&target)
        }
        DataAction::Info(target) => report(&target, false),
        DataAction::Verify(target) => report(&target, true),
        DataAction::Prepare(target) => prepare(&target),
    }
}

/// Loads the data set (decompressing or decoding it into the cache) and says what it holds.
fn prepare(target: &DataTarget) -> anyhow::Result<()> {
    let (spec, opts) = options(target)?;
    let data = drift_data::prepare(&spec, &opts).map_err(|e| bad_input(e.to_string()))?;
    for warning in &data.warnings {
        eprintln!("drift: warning: {warning}");
    }
    println!(
        "{}: {} train and {} test samples, {} inputs, {} classes; cache {}",
        data.name,
        data.train.len(),
        data.test.len(),
        data.input_dim,
        data.classes,
        opts.cache_dir.display()
    );
    Ok(())
}
/// Prints one line per file; with `hash`, fails (exit 2) unless every checksum is known and right.
fn report(target: &DataTarget, hash: bool) -> anyhow::Result<()> {
    let (spec, opts) = options(target)?;
    let files = drift_data::inspect(&spec, &opts, hash).map_err(|e| bad_input(e.to_string()))?;
    let mut bad = Vec::new();
    for f in &files {
        println!(
            "{:<13} {:>10} bytes  {}  {}  {}",
            f.role,
            f.bytes,
            f.status,
            f.sha256.as_deref().unwrap_or("-"),
            f.path.display()
        );
        if hash && f.status != "ok" {
            bad.push(format!("{} ({})", f.path.display(), f.status));
        }
    }
    if !bad.is_empty() {
        return Err(bad_input(format!("{}: {}", spec, bad.join(", "))));
    }
    Ok(())
}
