#!/usr/bin/env bash
# Starts (once) the PostgreSQL cluster the tests use, and prints its URL on standard output.
#
# A cluster of Debian's postgresql-15, `suivi-test`, listening on 127.0.0.1:55432 only, with a
# role `suivi` that may create databases: each test makes its own database and drops it. The
# cluster trades durability for speed (fsync off): it holds only test data. Idempotent: a
# running cluster is reused. Needs root (pg_createcluster, pg_ctlcluster), as CI has.
#
#   SUIVI_TEST_POSTGRES=$(bash tests/postgres.sh) cargo test -p sync-server --test store_conformance
set -euo pipefail
version=15
cluster=suivi-test
port=55432
password=suivi-test
url="postgres://suivi:${password}@127.0.0.1:${port}/postgres"

if ! command -v pg_createcluster >/dev/null 2>&1 || [ ! -x "/usr/lib/postgresql/$version/bin/postgres" ]; then
  echo "tests/postgres.sh: PostgreSQL $version is not installed (bash .ci/setup installs it)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/postgres.sh: starting the test cluster needs root (or set SUIVI_TEST_POSTGRES to a URL)" >&2
  exit 1
fi

if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$cluster"; then
  pg_createcluster -q "$version" "$cluster" -p "$port" -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  conf="/etc/postgresql/$version/$cluster/conf.d/suivi-test.conf"
  cat >"$conf" <<EOF
listen_addresses = '127.0.0.1'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi
if ! pg_lsclusters -h | awk -v c="$cluster" '$2 == c {print $4}' | grep -qx online; then
  pg_ctlcluster "$version" "$cluster" start >&2
fi
runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 >/dev/null <<EOF
SELECT 'CREATE ROLE suivi LOGIN CREATEDB PASSWORD ''$password'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'suivi') \gexec
EOF
echo "$url"
