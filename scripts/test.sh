#!/usr/bin/env bash
# The one test command (npm test): installs what the tests need, builds,
# then runs every test file with Node's built-in runner inside a private
# network namespace (scripts/in-private-network.sh): whatever the tests send,
# WebRTC media included, stays on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
npm run --silent build
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec bash scripts/in-private-network.sh node --import tsx --test --test-concurrency=1 --test-timeout=300000 "$@" "${files[@]}"
