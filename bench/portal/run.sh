#!/usr/bin/env bash
# Portal page load times with 1,000 extensions and 100 parked calls (issue 6
# quality bar: every page under 200 ms). Builds in release mode and serves
# the portal on a localhost port; see crates/orbit-portal/examples/bench_pages.rs.
# With --browser, also loads each page in headless Chromium
# (bench/portal/browser.mjs; needs `cd tests/browser && npm ci`).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --offline -p orbit-portal --example bench_pages
target/release/examples/bench_pages
if [ "${1:-}" = "--browser" ]; then
  node bench/portal/browser.mjs
fi
