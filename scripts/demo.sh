#!/usr/bin/env bash
# Install dependencies, build trmtop, start the bundled demo target under
# Debian's python3 (a worker that leaks from one line) and watch it with the
# live view, `trmtop --pid PID`: full-screen on a terminal (q quits), else
# three refreshes as text blocks.
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
if [ -t 0 ] && [ -t 1 ]; then
  ./build/src/cli/trmtop --pid "$pid"
else
  echo "\$ trmtop --pid $pid --batch --iterations 3 --interval 1s"
  ./build/src/cli/trmtop --pid "$pid" --batch --iterations 3 --interval 1s
fi
