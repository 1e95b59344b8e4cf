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

npm run --silent build
# The integration tier never skips: `setup` installs and starts what this machine lacks (Debian,
# as root), or fails naming what to run; then it runs doctor's checks.
if [ "$tier" != unit ]; then
  node dist/bot-bottle.js setup
  # The interactive tests drive `bot-bottle start` in a terminal of tmux's own.
  if ! command -v tmux >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q tmux >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q tmux >/dev/null; }
  fi
fi

# A file listed twice runs once.
mapfile -t files < <(printf '%s\n' "${files[@]}" | awk '!seen[$0]++')

taps=()
trap 'rm -f "${taps[@]}"' EXIT
status=0
run_files() {
  [ "$#" -gt 0 ] || return 0
  local tap
  tap=$(mktemp)
  taps+=("$tap")
  node --import tsx --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "$@" || status=$?
}

# node's runner orders files itself: run the image tests in a first pass, so a fresh machine
# builds the offline base there (with its progress checked) before the bottles need it.
first=() rest=()
for f in "${files[@]}"; do
  case "$f" in test/integration/images/*) first+=("$f") ;; *) rest+=("$f") ;; esac
done
run_files "${first[@]}"
run_files "${rest[@]}"

sum() { cat "${taps[@]}" | sed -n "s/^# $1 \([0-9]*\)$/\1/p" | awk '{ n += $1 } END { print n + 0 }'; }
echo "$(sum pass) passed, $(sum fail) failed"
exit "$status"
