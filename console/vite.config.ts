// The console's build: Svelte 5 compiled by Vite into console/dist, which the worker serves as
// Workers static assets (wrangler.jsonc `assets`). No inline scripts or styles are emitted, so
// the page's Content-Security-Policy (set by the worker on `/`) can forbid them.
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // One small bundle: the CSP allows only same-origin scripts and styles.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    target: "es2022",
  },
});
