#!/usr/bin/env bash
# Install dependencies, build trmtop, start the bundled demo target under
# Debian's python3 and show what trmtop sees in it.
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
python3=/usr/bin/python3
exec 3< <(exec $python3 -u scripts/demo_target.py)
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
read -r -u 3 _ready   # the target's first line: its main loop is running
echo "\$ trmtop start --pid $pid"
./build/src/cli/trmtop start --pid "$pid"
echo "\$ trmtop stats --pid $pid"
./build/src/cli/trmtop stats --pid "$pid"
echo "\$ trmtop stop --pid $pid"
./build/src/cli/trmtop stop --pid "$pid"
