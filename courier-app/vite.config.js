// Build of the courier's app: served by Fieldops at /app/ from dist/ (never committed; `npm run build`).
// swPlugin builds src/sw.js after the app, as dist/sw.js (one classic script, unhashed: its URL is the
// registration's), with the list of the files of THIS build and a version taken from their contents.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build, defineConfig } from "vite";

const BASE = "/app/";
const HERE = fileURLToPath(new URL(".", import.meta.url));

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The precache list (index.html as the scope's URL, /app/, which is what the server answers it at) and the build's
 * version: a hash of every file's name and bytes, so a new build means a new cache and the old one is deleted. */
export function precacheOf(outDir) {
  const files = filesUnder(outDir).map((path) => relative(outDir, path).split(sep).join("/"))
    .filter((name) => name !== "sw.js" && !name.endsWith(".map")).sort();
  const hash = createHash("sha256");
  for (const name of files) hash.update(name).update("\0").update(readFileSync(join(outDir, name))).update("\0");
  const urls = files.map((name) => (name === "index.html" ? BASE : BASE + name));
  return { urls, version: hash.digest("hex").slice(0, 16) };
}

function swPlugin() {
  let outDir;
  return {
    name: "fieldops-service-worker",
    apply: "build",
    configResolved(config) {
      outDir = join(config.root, config.build.outDir);
    },
    async closeBundle() {
      const { urls, version } = precacheOf(outDir);
      await build({
        configFile: false,
        root: HERE,
        logLevel: "warn",
        publicDir: false,
        define: { __PRECACHE__: JSON.stringify(urls), __BUILD_VERSION__: JSON.stringify(version) },
        build: {
          outDir,
          emptyOutDir: false,
          target: "es2022",
          copyPublicDir: false,
          lib: { entry: join(HERE, "src/sw.js"), formats: ["iife"], name: "fieldopsWorker", fileName: () => "sw.js" },
        },
      });
      console.log(`service worker: dist/sw.js, build ${version}, ${urls.length} files precached`);
    },
  };
}

export default defineConfig({
  base: BASE,
  plugins: [swPlugin()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0, // no data: URLs: the app's CSP allows only 'self'
  },
});
