#!/usr/bin/env bash
# Build the lbcore.fleet collection and install it into a directory of this repository.
#
#   scripts/build-collection.sh [INSTALL_PATH]     (default: .venv/collections)
#
# The collection's source is split: collection/ (galaxy.yml, meta, plugins, playbooks) and
# roles/ (the roles it ships). This assembles both into build/collection/, runs
# `ansible-galaxy collection build` (the tarball lands in build/), then
# `ansible-galaxy collection install` into INSTALL_PATH, so ANSIBLE_COLLECTIONS_PATH=INSTALL_PATH
# finds lbcore.fleet.* without touching ~/.ansible: a fresh clone is self-contained.
# Environment: ANSIBLE_GALAXY (default: ansible-galaxy on PATH), BUILD_DIR (default: build).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
install_path="${1:-$repo/.venv/collections}"
build_dir="${BUILD_DIR:-$repo/build}"
galaxy="${ANSIBLE_GALAXY:-ansible-galaxy}"

src="$build_dir/collection"
rm -rf "$src"
mkdir -p "$src"
# Copy the sources (not symlinks: the tarball must hold real files).
cp -a "$repo/collection/." "$src/"
cp -a "$repo/roles" "$src/roles"
find "$src" -name __pycache__ -type d -prune -exec rm -rf {} +

# The lbcore package travels inside the collection: its wheel, the wheels of its runtime
# dependencies and pip's own, so that the install role needs no package index on the host.
python="${PYTHON:-python3}"
wheels="$src/roles/install/files/wheels"
mkdir -p "$wheels"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$wheels" "$repo"
"$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
  --no-deps --dest "$wheels" pip

version="$(sed -n 's/^version: *//p' "$src/galaxy.yml")"
tarball="$build_dir/lbcore-fleet-$version.tar.gz"
rm -f "$tarball"
"$galaxy" collection build "$src" --output-path "$build_dir" --force >/dev/null
mkdir -p "$install_path"
"$galaxy" collection install "$tarball" -p "$install_path" --force --offline >/dev/null
echo "lbcore.fleet $version: $tarball installed in $install_path"
