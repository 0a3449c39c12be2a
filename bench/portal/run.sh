#!/usr/bin/env bash
# Portal page load times with 1,000 extensions and 100 parked calls (issue 6
# quality bar: every page under 200 ms). Builds in release mode and serves
# the portal on a localhost port; see crates/orbit-portal/examples/bench_pages.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release --offline -p orbit-portal --example bench_pages "$@"
