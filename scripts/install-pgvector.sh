#!/bin/sh
# Build and install the pgvector extension for PostgreSQL 15 on Debian 12.
#
# postgresql-15-pgvector is not packaged for Debian 12 (bookworm), so this builds
# it from the Debian source package of the next release (trixie):
#   1. a private APT configuration whose only source is a deb-src line for trixie
#      (the system's own sources lists are left untouched),
#   2. apt-get source --download-only pgvector, dpkg-source -x,
#   3. apt-get install postgresql-server-dev-15 (from the system's sources),
#   4. make && make install with PG_CONFIG.
#
# Idempotent: exits at once when the extension is already installed (its control
# file and shared library exist, or CREATE EXTENSION vector already works).
# Run as root. Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config),
# PGVECTOR_SUITE (default trixie), PGVECTOR_MIRROR (default http://deb.debian.org/debian),
# PGVECTOR_CHECK_URL (optional libpq URL to try CREATE EXTENSION on).
set -eu

PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
SUITE="${PGVECTOR_SUITE:-trixie}"
MIRROR="${PGVECTOR_MIRROR:-http://deb.debian.org/debian}"

log() { printf 'install-pgvector: %s\n' "$*"; }

installed() {
    [ -x "$PG_CONFIG" ] || return 1
    share="$("$PG_CONFIG" --sharedir)"
    lib="$("$PG_CONFIG" --pkglibdir)"
    [ -f "$share/extension/vector.control" ] && [ -f "$lib/vector.so" ]
}

works_in_server() {
    [ -n "${PGVECTOR_CHECK_URL:-}" ] || return 1
    command -v psql >/dev/null 2>&1 || return 1
    psql "$PGVECTOR_CHECK_URL" -v ON_ERROR_STOP=1 -qAt \
        -c 'CREATE EXTENSION IF NOT EXISTS vector' >/dev/null 2>&1
}

if installed || works_in_server; then
    log "pgvector is already installed; nothing to do."
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "run as root (it installs packages and writes into PostgreSQL's directories)." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! [ -x "$PG_CONFIG" ] || ! [ -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]; then
    log "installing postgresql-server-dev-15 (server headers)"
    apt-get update -qq
    apt-get install -y -qq postgresql-server-dev-15 >/dev/null
fi
command -v dpkg-source >/dev/null 2>&1 || apt-get install -y -qq dpkg-dev >/dev/null

work="$(mktemp -d /tmp/pgvector-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT INT TERM
chmod 755 "$work"  # APT's download user (_apt) writes here
mkdir -p "$work/lists/partial" "$work/src"
chmod 777 "$work/src"
printf 'deb-src %s %s main\n' "$MIRROR" "$SUITE" >"$work/sources.list"
# Only this private list: the system's sources (and their state) stay as they are.
set -- -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/none" \
    -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0"

log "fetching the pgvector source package from $SUITE"
apt-get "$@" update -qq
(cd "$work/src" && apt-get "$@" source --download-only pgvector >/dev/null)
dsc="$(ls "$work"/src/pgvector_*.dsc | head -n 1)"
(cd "$work/src" && dpkg-source -x "$dsc" pgvector >/dev/null)

log "building $(basename "$dsc" .dsc) against $("$PG_CONFIG" --version)"
make -s -C "$work/src/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s -C "$work/src/pgvector" PG_CONFIG="$PG_CONFIG" install >/dev/null

if installed; then
    log "installed; CREATE EXTENSION vector now works in every database."
else
    log "the build finished but the extension files are missing" >&2
    exit 1
fi
