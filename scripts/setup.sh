#!/usr/bin/env bash
# Set up dwa_core on a fresh machine:
#  1. system packages: the Fashion-MNIST dataset and Chromium (browser tests), when apt and root allow;
#  2. the heavy environment (torch, jupyterlab, ...) built from requirements.lock, cached outside the
#     clone and keyed by the lock's hash, so a second run (or a second clone) reuses it;
#  3. ./.venv: a small environment of THIS checkout, layered over the cached one, that imports this
#     checkout's dwa_core whatever another checkout did (the cached environment is never pointed at
#     a checkout);
#  4. git's nbstripout filter: notebook outputs never reach a commit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
apt_install() {  # apt_install PACKAGE WHAT-IF-MISSING
  if command -v apt-get >/dev/null 2>&1 && [ "$SUDO" != none ]; then
    echo "setup: installing $1 (Debian package)"
    ( { [ -n "${APT_UPDATED:-}" ] || $SUDO apt-get update -qq; } \
      && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$1" >/dev/null ) \
      || echo "setup: could not install $1; $2"
    APT_UPDATED=1
  else
    echo "setup: $1 is missing and cannot be installed here; $2"
  fi
}
# Real Fashion-MNIST for the offline benchmarks.
[ -d /usr/share/datasets/fashion-mnist ] || apt_install dataset-fashion-mnist "Fashion-MNIST tests will be skipped"
# Chromium for the browser tests (Playwright drives it; its own browser download is not used).
command -v chromium >/dev/null 2>&1 || apt_install chromium "the browser tests will be skipped"

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
base_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# ./.venv of this checkout: no packages of its own, two .pth files. The first puts this checkout
# on sys.path; the second adds the cached environment after it.
if [ -L .venv ] || { [ -e .venv ] && [ ! -f .venv/pyvenv.cfg ]; }; then rm -rf .venv; fi
[ -f .venv/pyvenv.cfg ] || "$PYTHON" -m venv --without-pip .venv
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$site/00_dwa_core_checkout.pth"
echo "import site; site.addsitedir('$base_site')" > "$site/zz_dwa_core_base.pth"
# JupyterLab's extensions (ipywidgets) live in share/, its server configuration in etc/: etc/ is this
# checkout's own (links to the cached files) plus one file, the pre-save hook that drops language_info
# (dwa_core/notebook.py), so that opening and saving a notebook writes back the committed bytes.
rm -rf .venv/share .venv/etc
ln -s "$venv/share" .venv/share
cp -rs "$venv/etc" .venv/etc
mkdir -p .venv/etc/jupyter
rm -f .venv/etc/jupyter/jupyter_server_config.json  # the cached environment has none; this one is ours
echo '{"ContentsManager": {"pre_save_hook": "dwa_core.notebook.normalise_on_save"}}' \
  > .venv/etc/jupyter/jupyter_server_config.json
here=$(pwd -P)
got=$(cd / && "$here/.venv/bin/python" -c 'import dwa_core, pathlib; print(pathlib.Path(dwa_core.__file__).resolve().parents[1])')
if [ "$got" != "$here" ]; then
  echo "setup: .venv imports dwa_core from $got, not from $here" >&2
  exit 1
fi

# The commands of the environment in .venv/bin (`source .venv/bin/activate && jupyter lab`): the
# cached environment's Python scripts (jupyter, papermill, pytest, ...) re-pointed at .venv's python,
# so that they import this checkout; its other programs (ruff) linked; and this project's own
# commands, from pyproject.toml's [project.scripts] (dwa-core).
for script in "$venv"/bin/*; do
  name=$(basename "$script")
  case $name in python*|pip*|activate*|Activate*) continue ;; esac
  [ -f "$script" ] && [ -x "$script" ] || continue
  rm -f ".venv/bin/$name"
  if head -n1 "$script" | grep -qx "#!$venv/bin/python[0-9.]*"; then
    { echo "#!$here/.venv/bin/python"; tail -n +2 "$script"; } > ".venv/bin/$name"
    chmod +x ".venv/bin/$name"
  elif ! head -c2 "$script" | grep -q '#!'; then
    ln -s "$script" ".venv/bin/$name"  # a compiled program
  fi
done
sed -n '/^\[project.scripts\]/,/^\[/p' pyproject.toml | sed -n 's/^\([A-Za-z0-9_.-]*\) *= *"\([A-Za-z0-9_.]*\):\([A-Za-z0-9_]*\)"$/\1 \2 \3/p' |
while read -r name module function; do
  printf '#!%s\nimport sys\nfrom %s import %s\nsys.exit(%s())\n' "$here/.venv/bin/python" "$module" "$function" \
    "$function" > ".venv/bin/$name"
  chmod +x ".venv/bin/$name"
done

# Notebooks are committed without outputs: git runs nbstripout on them (.gitattributes). It also drops
# the kernel's language_info, which JupyterLab adds on every save (nbstripout's extrakeys); the committed
# kernelspec is the one ipykernel installs (python3, "Python 3 (ipykernel)"), so an open-and-save
# leaves `git status` clean.
if git rev-parse --git-dir >/dev/null 2>&1; then
  git config filter.nbstripout.clean ".venv/bin/python -m nbstripout"  # relative: each worktree its own
  git config filter.nbstripout.smudge cat
  git config filter.nbstripout.required true
  git config filter.nbstripout.extrakeys metadata.language_info
  git config diff.ipynb.textconv ".venv/bin/python -m nbstripout -t"
fi
echo "setup: ready (.venv of $PWD, over $venv)"
