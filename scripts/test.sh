#!/usr/bin/env bash
# Every test bot-bottle has: static checks, the unit tier, and the integration tier against a
# real Docker engine (provisioned here when missing — never skipped).
#   bash scripts/test.sh            everything
#   bash scripts/test.sh unit       unit tier only
#   bash scripts/test.sh integration
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-all}"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

shopt -s globstar nullglob
files=()
case "$tier" in
  all)
    npm run --silent typecheck
    npm run --silent lint
    files=(test/unit/**/*.test.ts test/integration/images/*.test.ts test/integration/**/*.test.ts)
    ;;
  unit) files=(test/unit/**/*.test.ts) ;;
  integration) files=(test/integration/images/*.test.ts test/integration/**/*.test.ts) ;;
  *) echo "usage: scripts/test.sh [all|unit|integration]" >&2; exit 2 ;;
esac

if [ "$tier" != unit ]; then
  bash scripts/ensure-docker.sh
  bash scripts/ensure-tools.sh
fi
npm run --silent build

# The images tests first, so a fresh machine exercises the offline base build there; each
# end-to-end file also makes sure of the base itself. A file listed twice runs once.
mapfile -t files < <(printf '%s\n' "${files[@]}" | awk '!seen[$0]++')

tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
node --import tsx --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${files[@]}" || status=$?

pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
echo "${pass:-0} passed, ${fail:-0} failed"
exit "$status"
