// Build of the courier's app: served by Fieldops at /app/ from dist/ (never committed; `npm run build`).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/app/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0, // no data: URLs: the app's CSP allows only 'self'
  },
});
