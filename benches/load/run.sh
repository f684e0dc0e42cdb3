#!/usr/bin/env bash
# The webhook load proof (issue 8): builds `orb` and the `load-webhook` tool in release
# (one cargo invocation, so both share one feature resolution and nothing is built
# twice), then runs the tool against `target/release/orb`.
#
#   bash benches/load/run.sh                       # 100, 500, 1,000 items/s, 30 s each
#   bash benches/load/run.sh --seconds 10          # shorter phases
#   bash benches/load/run.sh --rates 500 --events 500 --drain-seconds 300
#
# Arguments are passed to the tool (see the header of benches/load_webhook.rs). It
# starts the Graph and TOPdesk emulators in-process and `orb run` as a subprocess, all
# on 127.0.0.1, prints a markdown table on stdout and progress on stderr, and stops by
# itself. The machine's load average is printed with each phase: run it on a quiet
# machine, or say what else was running.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

cargo build --release --locked -p orb -p orb-benches --bin orb --bin load-webhook >&2

echo "load-webhook: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$target/release/load-webhook" --orb "$target/release/orb" "$@"
