#!/usr/bin/env bash
# Prints, in brief, the failed scenarios of every scenario report written
# after the stamp file $1 (reports/out/scenarios-*/report.json), so the tail
# of a CI log names what failed and why, not only where.
set -uo pipefail
stamp=$1
cd "$(dirname "$0")/.."
while read -r json; do
  go run ./reports/render -failures "$json"
done < <(find reports/out -mindepth 2 -maxdepth 2 -name report.json -newer "$stamp" 2>/dev/null | sort)
