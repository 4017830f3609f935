#!/usr/bin/env bash
# Set up dwa_core on a fresh machine: the system dataset package, then a virtual environment
# built from requirements.lock, cached outside the clone and keyed by the lock's hash, so a
# second run (or a second clone) reuses it. Leaves ./.venv pointing at it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real Fashion-MNIST for the offline benchmarks (Debian package; tests skip without it).
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" != none ]; then
    echo "setup: installing dataset-fashion-mnist (Debian package)"
    ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
      || echo "setup: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"
  fi
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "dwa_core needs Python >= 3.10"'
key=$( (cat requirements.lock; "$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
cache=${DWA_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dwa_core}
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setup: building $venv from requirements.lock (first time only; torch is large)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$PYTHON" -m venv "$venv"
  quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }  # mirror noise
  quiet "$venv/bin/python" -m pip install -q --upgrade pip
  quiet "$venv/bin/python" -m pip install -q -r requirements.lock
  touch "$venv/.complete"
fi
# Point the environment at this clone (a .pth file: no build step, safe to share the venv).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$site/dwa_core_checkout.pth"
ln -sfn "$venv" .venv
echo "setup: ready (.venv -> $venv)"
