# Sourced by scripts/*.sh: make (or reuse) .venv and install Fieldops with the given extras.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FIELDOPS_VENV:-$ROOT/.venv}"
extras="$1"
if [ ! -x "$VENV/bin/python" ]; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Fieldops needs Python 3.11")'
  "$py" -m venv "$VENV"
fi
stamp="$VENV/.fieldops-installed-$extras"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extras]"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
