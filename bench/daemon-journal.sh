#!/bin/bash
# Journal cost and daemon memory, measured by hand until the benchmark has
# daemon rows: starts `zonemon daemon` on a fresh journal under /var/tmp,
# makes ZONES zones (8 at a time, the benchmark's zonefork helper), waits
# until the journal has every one's `down`, then prints the daemon's peak RSS
# (VmHWM), its CPU per journaled record (the whole daemon: watching and
# journaling) and the journal's bytes per record. Needs root, cc, sqlite3.
# usage: sudo bench/daemon-journal.sh [ZONES] [ZONEMON]
set -euo pipefail
N=${1:-100000}
ZONEMON=${2:-target/release/zonemon}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /var/tmp/zonemon-journal-bench.XXXXXX)
trap 'kill "$DAEMON" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/zonefork" "$HERE/crates/zonemon-bench/c/zonefork.c"
J=$WORK/journal.db
"$ZONEMON" daemon --journal "$J" 2>"$WORK/stderr" &
DAEMON=$!
until grep -q 'daemon: journaling' "$WORK/stderr"; do sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
t0=$(ticks)
"$WORK/zonefork" zmjb- 0 "$N" 8 /bin/true
q() { sqlite3 -readonly "$J" "$1"; }
until [ "$(q "select count(*) from events where name like 'zmjb-%' and event = 'down'")" -ge "$N" ]; do sleep 1; done
t1=$(ticks)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON/status")
records=$(q "select count(*) from events")
lost=$(q "select count(*) from events where event = 'lost'")
kill -TERM "$DAEMON"; wait "$DAEMON" || true
bytes=$(stat -c %s "$J")
hz=$(getconf CLK_TCK)
echo "zones $N, records $records, lost records $lost"
echo "daemon peak RSS $(echo "scale=1; $hwm / 1024" | bc) MiB"
echo "daemon CPU per record $(echo "scale=1; ($t1 - $t0) * 1000000 / $hz / $records" | bc) us"
echo "journal bytes per record $(echo "$bytes / $records" | bc)"
