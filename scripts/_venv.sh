# Sourced by scripts/*.sh: make (or reuse) .venv and install Fieldops with the given extras.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FIELDOPS_VENV:-$ROOT/.venv}"
extras="$1"
# The interpreter: the newest of 3.13, 3.12 and 3.11 that runs here (3.13 is the one CI proves and the fastest
# measured: docs/benchmarks.md, issue 26). pyenv's versions are looked for too, since its shims only run the
# versions it is told to. FIELDOPS_PYTHON names one explicitly.
pick_python() {
  local want candidates=()
  [ -n "${FIELDOPS_PYTHON:-}" ] && candidates+=("$FIELDOPS_PYTHON")
  for want in 3.13 3.12 3.11; do
    candidates+=("python$want")
    if command -v pyenv >/dev/null 2>&1; then
      candidates+=("$(pyenv root)"/versions/"$want"*/bin/python"$want")
    fi
  done
  candidates+=(python3)
  # ensurepip too: Debian's python3.X without its -venv package imports venv, then fails to make one.
  for py in "${candidates[@]}"; do
    if "$py" -c 'import sys, venv, ensurepip; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  echo "Fieldops needs Python 3.13 (or 3.12, 3.11): none found" >&2
  return 1
}
if [ ! -x "$VENV/bin/python" ]; then
  py="$(pick_python)"
  echo "making $VENV with $("$py" -c 'import sys; print("Python", sys.version.split()[0])') ($py)" >&2
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
