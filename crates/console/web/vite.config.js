import { defineConfig } from "vite";

// The admin listener serves index.html at `/` and the hashed files under `/assets/`;
// the Rust crate embeds dist/ as built. `npm run dev` proxies the control API to a
// running gureum (GUREUM_ADMIN_URL, default the admin listener's default address).
export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Browsers of 2023 and later: no legacy transforms, smaller output.
    target: "es2022",
  },
  server: {
    proxy: {
      "/api": process.env.GUREUM_ADMIN_URL ?? "http://127.0.0.1:8081",
    },
  },
});
