#!/usr/bin/env bash
# Set up a venv, create/upgrade the SQLite database, load the demo depot, serve on :8000.
source "$(dirname "$0")/_venv.sh" postgres
fieldops db upgrade
fieldops seed-demo
echo "Serving on http://${FIELDOPS_HOST:-127.0.0.1}:${FIELDOPS_PORT:-8000}  (API docs: /api/v1/docs)"
exec fieldops serve --host "${FIELDOPS_HOST:-127.0.0.1}" --port "${FIELDOPS_PORT:-8000}" "$@"
