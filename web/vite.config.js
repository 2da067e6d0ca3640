// Builds the browser pages into the Python package (app/static), so `pip install`
// needs no Node and no page loads anything from another host.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  base: "/static/",
  build: {
    outDir: fileURLToPath(new URL("../app/static", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: Object.fromEntries(["index", "login", "graphiql"].map((page) => [
        page, fileURLToPath(new URL(`${page}.html`, import.meta.url))])),
    },
  },
});
