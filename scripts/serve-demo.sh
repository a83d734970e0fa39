#!/usr/bin/env bash
# Set up a venv, create/upgrade the SQLite database, load the demo depot, serve on :8000.
source "$(dirname "$0")/_venv.sh" postgres
source "$ROOT/scripts/_app.sh"
# The courier's app (/app): built here when Node and npm are present; without them the demo still serves the rest.
if app_build; then
  app_line="the courier's app: ${FIELDOPS_PUBLIC_URL:-http://${FIELDOPS_HOST:-127.0.0.1}:${FIELDOPS_PORT:-8000}}/app/"
else
  app_line="the courier's app is NOT built ($APP_WHY): /app answers 503 until it is; the rest of the demo works"
  echo "=== $app_line ===" >&2
fi
# Customer links printed by the seed point at where this demo listens.
export FIELDOPS_PUBLIC_URL="${FIELDOPS_PUBLIC_URL:-http://${FIELDOPS_HOST:-127.0.0.1}:${FIELDOPS_PORT:-8000}}"
fieldops db upgrade
fieldops seed-demo
echo "$app_line"
echo "Serving on http://${FIELDOPS_HOST:-127.0.0.1}:${FIELDOPS_PORT:-8000}  (the console: /console/, with the usernames and passwords above; API docs: /api/v1/docs)"
exec fieldops serve --host "${FIELDOPS_HOST:-127.0.0.1}" --port "${FIELDOPS_PORT:-8000}" "$@"
