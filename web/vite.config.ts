import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";
import { bundleSize } from "./plugins/bundle-size.ts";

// The gateway (make run) answers /api, /ws and /docs; the dev server forwards them there.
const gateway = process.env.ALGOTRADE_GATEWAY ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react(), bundleSize()],
  server: {
    proxy: {
      "/api": gateway,
      "/docs": gateway,
      "/openapi.json": gateway,
      "/ws": { target: gateway.replace(/^http/, "ws"), ws: true },
    },
  },
  build: {
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
    rollupOptions: {
      output: {
        // the charting library gets a chunk of its own, named for it, loaded by the chart pages only
        manualChunks: (id: string) => (/node_modules\/(lightweight-charts|fancy-canvas)\//.test(id) ? "charts" : undefined),
      },
    },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
