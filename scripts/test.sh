#!/usr/bin/env bash
# Set up a venv and run the whole suite: the SQLite pass, then the PostgreSQL pass.
# Without a reachable PostgreSQL the second pass is skipped and says so, unless
# FIELDOPS_REQUIRE_POSTGRES=1 (as in .ci/run), which makes it fail instead.
# Each pass ends saying whether the browser tests (headless Chromium) ran or were
# skipped; FIELDOPS_REQUIRE_BROWSER=1 (as in .ci/run) makes a missing browser fail.
# The courier app (courier-app/) is built first (npm ci and npm run build when stale) and its Node unit tests run
# (npm test); without Node >= 20.19 and npm its tests are skipped and the last line says so, unless
# FIELDOPS_REQUIRE_BROWSER=1 (as in .ci/run), which makes that a failure.
# Extra arguments go to pytest (e.g. -k sync, -x).
source "$(dirname "$0")/_venv.sh" dev
source "$ROOT/scripts/_app.sh"

run_pass() {
  local db="$1"; shift
  echo "=== Fieldops tests: $db pass ==="
  local browser_report browser_line
  browser_report="$(mktemp)"
  set +e
  FIELDOPS_BROWSER_REPORT="$browser_report" python -m pytest --db="$db" "$@"
  local rc=$?
  set -e
  browser_line="$(cat "$browser_report" 2>/dev/null || true)"
  echo "=== $db pass: ${browser_line:-browser tests not collected} ==="
  rm -f "$browser_report"
  if [ "$rc" -eq 5 ]; then
    echo "(no tests selected for the $db pass)"
    rc=0
  fi
  return "$rc"
}

echo "=== Lint (ruff) ==="
ruff check server sync schemas tools scripts tests

app_rc=0
if app_build; then
  echo "=== courier app: Node unit tests (npm test) ==="
  app_log="$(mktemp)"
  set +e
  (cd "$APP_DIR" && npm test) 2>&1 | tee "$app_log"
  app_rc=${PIPESTATUS[0]}
  set -e
  app_counts="$(sed -n 's/^# \(pass\|fail\) \([0-9]*\)$/\2 \1/p' "$app_log" | paste -sd, - | sed 's/,/, /')"
  rm -f "$app_log"
  if [ "$app_rc" -eq 0 ]; then
    app_summary="courier app: built, Node tests passed (${app_counts:-?})"
  else
    app_summary="courier app: Node tests FAILED (${app_counts:-npm test exit $app_rc})"
  fi
elif [ "${FIELDOPS_REQUIRE_BROWSER:-0}" = "1" ]; then
  echo "courier app FAILED: $APP_WHY (FIELDOPS_REQUIRE_BROWSER=1)" >&2
  app_rc=1
  app_summary="courier app: FAILED ($APP_WHY)"
else
  echo "=== courier app SKIPPED: $APP_WHY (its Node tests do not run, nor its browser tests unless an earlier build is there) ==="
  app_summary="courier app: SKIPPED ($APP_WHY)"
fi

# Both passes run whatever the first one did (a failure on SQLite says nothing about PostgreSQL);
# the script fails if either did, and its last lines say how each went. With PostgreSQL reachable the two
# passes run side by side (their databases, servers, ports and temporary files are their own): the SQLite
# pass prints as it goes, the PostgreSQL pass's output follows when both have ended.
# FIELDOPS_TEST_SERIAL=1 runs them one after the other instead.
sqlite_rc=0
pg_rc=0
pg_url="${FIELDOPS_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
pg_up=0
python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$pg_url" 2>/dev/null && pg_up=1

if [ "$pg_up" = "1" ] && [ "${FIELDOPS_TEST_SERIAL:-0}" != "1" ]; then
  pg_log="$(mktemp)"
  echo "=== (the PostgreSQL pass runs beside the SQLite pass; its output follows the SQLite pass's) ==="
  run_pass postgresql "$@" >"$pg_log" 2>&1 &
  pg_pid=$!
  # Stopped early (^C, a failure of this script): the side pass stops too.
  trap 'pkill -P "$pg_pid" 2>/dev/null || true; kill "$pg_pid" 2>/dev/null || true; rm -f "$pg_log"' EXIT
  run_pass sqlite "$@" || sqlite_rc=$?
  wait "$pg_pid" || pg_rc=$?
  trap - EXIT
  cat "$pg_log"
  rm -f "$pg_log"
else
  run_pass sqlite "$@" || sqlite_rc=$?
  if [ "$pg_up" = "1" ]; then
    run_pass postgresql "$@" || pg_rc=$?
  fi
fi
summary="SQLite pass: $([ "$sqlite_rc" -eq 0 ] && echo passed || echo "FAILED (pytest exit $sqlite_rc)")"
if [ "$pg_up" = "1" ]; then
  summary="$summary; PostgreSQL pass: $([ "$pg_rc" -eq 0 ] && echo passed || echo "FAILED (pytest exit $pg_rc)")"
elif [ "${FIELDOPS_REQUIRE_POSTGRES:-0}" = "1" ]; then
  echo "PostgreSQL pass FAILED: no PostgreSQL at $pg_url (FIELDOPS_REQUIRE_POSTGRES=1)" >&2
  pg_rc=1
  summary="$summary; PostgreSQL pass: FAILED (no PostgreSQL at $pg_url)"
else
  echo "=== PostgreSQL pass SKIPPED: no PostgreSQL at $pg_url (set FIELDOPS_TEST_DATABASE_URL) ==="
  summary="$summary; PostgreSQL pass: SKIPPED (no PostgreSQL at $pg_url)"
fi
echo "=== $summary; $app_summary ==="
[ "$sqlite_rc" -eq 0 ] && [ "$pg_rc" -eq 0 ] && [ "$app_rc" -eq 0 ]
