# Sourced by scripts/*.sh after _venv.sh: the courier app (courier-app/), built from its lock file.
# app_build: `npm ci` when package-lock.json is newer than the last install, `npm run build` when a source is newer
# than the build; returns 1 with APP_WHY set when it cannot (no Node >= 20.19 or npm, or npm failed).
APP_DIR="$ROOT/courier-app"
APP_WHY=""

app_build() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    APP_WHY="node and npm not found: the courier app (/app) needs Node >= 20.19 and npm"
    return 1
  fi
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    APP_WHY="Node $(node --version) is too old: the courier app (/app) needs Node >= 20.19"
    return 1
  fi
  local installed="$APP_DIR/node_modules/.fieldops-installed"
  if [ ! -f "$installed" ] || [ "$APP_DIR/package-lock.json" -nt "$installed" ] || [ "$APP_DIR/package.json" -nt "$installed" ]; then
    echo "=== courier app: npm ci (from package-lock.json) ==="
    (cd "$APP_DIR" && npm ci --no-audit --no-fund) || { APP_WHY="npm ci failed in courier-app/"; return 1; }
    touch "$installed"
  fi
  # dist/sw.js is the build's last file: a source newer than it means the build is stale.
  local built="$APP_DIR/dist/sw.js"
  if [ ! -f "$built" ] || [ ! -f "$APP_DIR/dist/index.html" ] || [ -n "$(find "$APP_DIR/src" "$APP_DIR/public" \
      "$APP_DIR/index.html" "$APP_DIR/vite.config.js" "$APP_DIR/package-lock.json" -newer "$built" -print -quit)" ]; then
    echo "=== courier app: npm run build ==="
    (cd "$APP_DIR" && npm run build) || { APP_WHY="npm run build failed in courier-app/"; return 1; }
  fi
  return 0
}
