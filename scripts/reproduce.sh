#!/usr/bin/env bash
# The runs of a reproduction profile, one `drift train` each, into $OUT/runs/<name>/.
# Environment: PROFILE (quick|full), OUT (results/$PROFILE), DRIFT (the binary).
set -euo pipefail
PROFILE=${PROFILE:-quick}
OUT=${OUT:-results/$PROFILE}
DRIFT=${DRIFT:-target/release/drift}

fashion=/usr/share/datasets/fashion-mnist
if [ -f "$fashion/train-images-idx3-ubyte.gz" ]; then
  dataset=fashion-mnist
else
  dataset=synthetic
  echo "WARNING: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist);" >&2
  echo "WARNING: this reproduction uses the SYNTHETIC data set instead." >&2
fi

case "$PROFILE" in
  quick) widths="16 64 256"; seeds="0"; epochs=20; extra=(--train-size 10000) ;;
  full)  widths="10 20 50 100 200 256 300 400 512 1000"; seeds="0 1 2 3 4 5 6 7 8 9"; epochs=1000; extra=() ;;
  *) echo "reproduce: unknown PROFILE '$PROFILE', expected quick or full" >&2; exit 2 ;;
esac

mkdir -p "$OUT/runs"
for width in $widths; do
  for seed in $seeds; do
    dir="$OUT/runs/$dataset-w$width-s$seed"
    if [ -f "$dir/runs.parquet" ]; then
      echo "reproduce: $dir is done, skipping"
      continue
    fi
    rm -rf "$dir"
    mask=()
    [ "$width" -ge 64 ] && mask=(--mask a)
    echo "reproduce: $dataset width $width seed $seed, $epochs epochs -> $dir"
    "$DRIFT" train --dataset "$dataset" --width "$width" --seed "$seed" --epochs "$epochs" "${extra[@]}" "${mask[@]}" --out "$dir"
  done
done
echo "reproduce: tables in $OUT/runs; for example:"
echo "  .venv/bin/python -c \"import duckdb; print(duckdb.sql(\\\"SELECT width, status, min_test_loss FROM read_parquet('$OUT/runs/*/runs.parquet') ORDER BY width\\\"))\""
