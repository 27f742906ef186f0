# Shared set-up for ops/up, ops/test and ops/bench. Sourced, not run: it defines functions.
# Idempotent: every step checks before it acts, so running it twice changes nothing.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-ops.settings}"
DB_USER="${WANGGE_DB_USER:-wangge}"
DB_PASSWORD="${WANGGE_DB_PASSWORD:-wangge}"
DB_NAME="${WANGGE_DB_NAME:-wangge}"
export DATABASE_URL="${DATABASE_URL:-postgis://$DB_USER:$DB_PASSWORD@127.0.0.1:5432/$DB_NAME}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
APT_PACKAGES=(postgresql-15-postgis-3 libgdal32 libgeos-c1v5 libproj25 redis-server chromium fonts-noto-cjk)
# Front-end assets come from the npm registry at set-up; ops/static_vendor is git-ignored.
# MapLibre GL JS 6 is ES modules only: the page imports maplibre-gl.mjs, which starts its worker
# as a module worker from the file beside it (same origin: no blob: worker, no CSP change).
NPM_PACKAGES=(leaflet@1.9.4 @geoman-io/leaflet-geoman-free@2.17.0 maplibre-gl@6.17.0)

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m!!\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local stamp="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  if [ ! -x "$PY" ]; then
    say "creating virtualenv in .venv"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ]; then
    say "installing Python packages from pyproject.toml"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q "$ROOT[dev]"
    rm -f "$VENV"/.installed-* && touch "$stamp"
  fi
}

ensure_static_vendor() {
  local dest="$ROOT/ops/static_vendor" stamp
  stamp="$dest/.installed-$(printf '%s\n' "${NPM_PACKAGES[@]}" | sha256sum | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  say "fetching front-end packages from the npm registry: ${NPM_PACKAGES[*]}"
  local work; work="$(mktemp -d)"
  (cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "${NPM_PACKAGES[@]}" >/dev/null) \
    || die "npm install failed"
  rm -rf "$dest" && mkdir -p "$dest"
  cp -r "$work/node_modules/leaflet/dist" "$dest/leaflet"
  cp -r "$work/node_modules/@geoman-io/leaflet-geoman-free/dist" "$dest/leaflet-geoman"
  # Only what the page loads (the bundle, its worker, the stylesheet), not the dev builds and
  # source maps (20 MB that collectstatic would copy for nothing).
  mkdir -p "$dest/maplibre"
  cp "$work"/node_modules/maplibre-gl/dist/maplibre-gl{.mjs,-worker.mjs,.css} \
     "$work/node_modules/maplibre-gl/LICENSE.txt" "$dest/maplibre/"
  rm -rf "$work"
  touch "$stamp"
}

ensure_postgres() {
  if ! pg_lsclusters -h 2>/dev/null | awk '$1==15 && $2=="main" {print $4}' | grep -q online; then
    say "starting PostgreSQL 15 (cluster main)"
    as_root pg_ctlcluster 15 main start
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not come up on 127.0.0.1:5432"
  # The role may create databases: pytest-django makes test_<name> databases of its own.
  as_root su postgres -c "psql -qtA -c \"SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'\"" | grep -q 1 \
    || as_root su postgres -c "psql -q -c \"CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD'\""
  as_root su postgres -c "psql -qtA -c \"SELECT 1 FROM pg_database WHERE datname='$DB_NAME'\"" | grep -q 1 \
    || as_root su postgres -c "createdb -O $DB_USER $DB_NAME"
  as_root su postgres -c "psql -q -d $DB_NAME -c 'SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS btree_gist;'"
  # Extensions in template1 so that pytest-django's test databases have them from birth.
  as_root su postgres -c "psql -q -d template1 -c 'SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS btree_gist;'"
}

ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 20); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || die "Redis did not come up on 127.0.0.1:6379"
}

setup_all() {
  cd "$ROOT" || exit 1
  ensure_apt_packages
  ensure_venv
  ensure_static_vendor
  ensure_postgres
  ensure_redis
}
