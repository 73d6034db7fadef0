#!/bin/sh
# The skip convention of drift's tests, for make recipes (the Rust tests have the drift-skip
# crate, the Python tests `skip` in tests/python/conftest.py):
#
#   scripts/skips.sh record CAPABILITY REASON
#       appends "CAPABILITY: REASON" to $DRIFT_SKIP_LOG (when set) and prints it; exits 1 with a
#       message instead when $DRIFT_REQUIRE (space- or comma-separated) names CAPABILITY.
#   scripts/skips.sh summary
#       prints "skipped: CAPABILITY: REASON (N tests)" for each distinct line of $DRIFT_SKIP_LOG,
#       or "skipped: nothing".
set -uf
case "${1:-}" in
record)
    capability=$2 reason=$3
    for word in $(printf '%s' "${DRIFT_REQUIRE:-}" | tr ',' ' '); do
        if [ "$word" = "$capability" ]; then
            echo "FAILED: $capability is required here (DRIFT_REQUIRE=\"$DRIFT_REQUIRE\"), but this cannot run: $reason" >&2
            exit 1
        fi
    done
    if [ -n "${DRIFT_SKIP_LOG:-}" ]; then
        printf '%s: %s\n' "$capability" "$reason" >> "$DRIFT_SKIP_LOG" || exit 1
    fi
    echo "SKIPPED $capability: $reason"
    ;;
summary)
    if [ -s "${DRIFT_SKIP_LOG:-}" ]; then
        sort "$DRIFT_SKIP_LOG" | uniq -c | while read -r count line; do
            [ "$count" = 1 ] && tests=test || tests=tests
            echo "skipped: $line ($count $tests)"
        done
    else
        echo "skipped: nothing"
    fi
    ;;
*)
    echo "usage: $0 record CAPABILITY REASON | summary" >&2
    exit 2
    ;;
esac
