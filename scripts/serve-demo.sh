#!/usr/bin/env bash
# Set up a venv, create/upgrade the SQLite database, load the demo depot, serve on :8000.
source "$(dirname "$0")/_venv.sh" postgres
# Customer links printed by the seed point at where this demo listens.
export FIELDOPS_PUBLIC_URL="${FIELDOPS_PUBLIC_URL:-http://${FIELDOPS_HOST:-127.0.0.1}:${FIELDOPS_PORT:-8000}}"
fieldops db upgrade
fieldops seed-demo
echo "Serving on http://${FIELDOPS_HOST:-127.0.0.1}:${FIELDOPS_PORT:-8000}  (the console: /console/, with the usernames and passwords above; API docs: /api/v1/docs)"
exec fieldops serve --host "${FIELDOPS_HOST:-127.0.0.1}" --port "${FIELDOPS_PORT:-8000}" "$@"
