#!/usr/bin/env bash
# Build CPython 3.14 for the test suite from ../shared/interpreters/, once:
# the regular build (shared libpython) and the free-threaded one
# (--disable-gil, static, core only: trmtop must refuse it).
#
#   bash scripts/python314.sh            build what is missing, then print
#                                        "PY314=<path>" and "PY314T=<path>"
#
# Prefixes (outside the repository) default to /opt/trmtop/python3.14 and
# /opt/trmtop/python3.14t; TRMTOP_PY314_ROOT moves both.  A prefix holding
# .trmtop-build with this recipe's key is reused as it is.  Each build goes
# to a staging folder beside its prefix and is renamed into place only when
# it is complete, so an interrupted build is never taken for a finished one.
#
# Exit status: 0 with both paths printed; 3 when ../shared/interpreters/ is
# absent (the caller skips the 3.14 tests, and says why); 1 when a build
# fails (the caller counts a failure).  Progress goes to stderr, one line per
# build with its duration.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src_dir=$(cd "$here/../.." 2>/dev/null && pwd)/shared/interpreters
tarball=$src_dir/Python-3.14.7.tar.xz
sha256=42f5f2473345c854944d0e82959840286e98831712de742d355079eba181afc0
root=${TRMTOP_PY314_ROOT:-/opt/trmtop}
jobs=$(nproc 2>/dev/null || echo 2)

say() { echo "python314: $*" >&2; }

if [ ! -f "$tarball" ]; then
  say "no $tarball (../shared/interpreters/ is missing): the CPython 3.14 tests are skipped"
  exit 3
fi

# build NAME KEY CONFIGURE-ARGS... : one variant into $root/NAME
build() {
  local name=$1 key=$2; shift 2
  local prefix=$root/$name
  if [ -f "$prefix/.trmtop-build" ] && [ "$(cat "$prefix/.trmtop-build")" = "$key" ]; then
    say "$name: reusing $prefix"
    return 0
  fi
  mkdir -p "$root" || return 1
  # what an interrupted run left (one run at a time)
  rm -rf "$root/.$name.staging."* "$prefix.old"
  local t0 stage work log
  t0=$(date +%s)
  stage=$(mktemp -d "$root/.$name.staging.XXXXXX") || return 1
  work=$(mktemp -d "${TMPDIR:-/tmp}/trmtop-py314.XXXXXX") || return 1
  log=$work/build.log
  say "$name: building into $prefix (log $log)"
  if ! (
      set -e
      echo "$sha256  $tarball" | sha256sum -c --quiet -
      tar -xf "$tarball" -C "$work"
      cd "$work/Python-3.14.7"
      "$@" "$prefix"
    ) >"$log" 2>&1; then
    say "$name: build FAILED after $(( $(date +%s) - t0 )) s; last lines of $log:"
    tail -n 20 "$log" >&2
    rm -rf "$stage"
    return 1
  fi
  # The build put its result in $stage/tree; the marker goes in last.
  echo "$key" >"$stage/tree/.trmtop-build"
  rm -rf "$prefix.old"
  [ -e "$prefix" ] && mv "$prefix" "$prefix.old"
  mv "$stage/tree" "$prefix" && rm -rf "$stage" "$prefix.old" "$work"
  say "$name: built in $(( $(date +%s) - t0 )) s"
}

# Regular build: shared libpython, installed with DESTDIR into the staging
# folder so that the configured prefix (and the rpath) is the final one.
regular() {
  local prefix=$1
  ./configure --prefix="$prefix" --enable-shared --with-ensurepip=no \
      --disable-test-modules LDFLAGS="-Wl,-rpath=$prefix/lib"
  make -j"$jobs"
  make install DESTDIR="$stage/destdir"
  mv "$stage/destdir$prefix" "$stage/tree"
}

# Free-threaded build: the interpreter and its pure-Python stdlib only (no
# extension modules: trmtop is expected to refuse it before it needs any),
# run in place from its build tree.
free_threaded() {
  ./configure --disable-gil --with-ensurepip=no --disable-test-modules
  make -j"$jobs" python platform
  ln python python3.14t   # the name an installed one has (and its version)
  cd ..
  mv Python-3.14.7 "$stage/tree"
}

regular_key="3.14.7 $sha256 regular v1"
ft_key="3.14.7 $sha256 free-threaded v2"
build python3.14 "$regular_key" regular || exit 1
build python3.14t "$ft_key" free_threaded || exit 1
echo "PY314=$root/python3.14/bin/python3.14"
echo "PY314T=$root/python3.14t/python3.14t"
