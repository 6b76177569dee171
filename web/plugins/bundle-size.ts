/**
 * A Vite plugin that prints the initial bundle's gzipped size after a build: the entry chunk,
 * every chunk it imports statically, and their CSS, i.e. what the first page load downloads.
 * Lazy (dynamically imported) chunks are left out; they load when their page opens.
 */
import { gzipSync } from "node:zlib";
import type { Plugin } from "vite";

export const INITIAL_BUNDLE_GOAL_KB = 500;

interface ChunkLike {
  type: "chunk";
  isEntry: boolean;
  code: string;
  imports: string[];
  viteMetadata?: { importedCss: Set<string> };
}
interface AssetLike {
  type: "asset";
  source: string | Uint8Array;
}

export function initialBundleFiles(bundle: Record<string, ChunkLike | AssetLike>): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    const item = bundle[name];
    if (seen.has(name) || item === undefined) return;
    seen.add(name);
    if (item.type === "chunk") {
      item.imports.forEach(visit);
      item.viteMetadata?.importedCss.forEach((css) => seen.add(css));
    }
  };
  for (const [name, item] of Object.entries(bundle)) {
    if (item.type === "chunk" && item.isEntry) visit(name);
  }
  return [...seen].filter((name) => bundle[name] !== undefined).sort();
}

export function bundleSize(): Plugin {
  return {
    name: "algotrade-initial-bundle-size",
    apply: "build",
    generateBundle(_options, bundle) {
      const items = bundle as unknown as Record<string, ChunkLike | AssetLike>;
      let gzipped = 0;
      let raw = 0;
      for (const name of initialBundleFiles(items)) {
        const item = items[name]!;
        const bytes = Buffer.from(item.type === "chunk" ? item.code : item.source);
        raw += bytes.length;
        gzipped += gzipSync(bytes, { level: 9 }).length;
      }
      const kb = (n: number) => (n / 1024).toFixed(1);
      const verdict = gzipped / 1024 < INITIAL_BUNDLE_GOAL_KB ? "under" : "OVER";
      console.log(
        `\ninitial bundle: ${kb(gzipped)} kB gzipped (${kb(raw)} kB raw), ` +
          `${verdict} the ${INITIAL_BUNDLE_GOAL_KB} kB goal\n`,
      );
    },
  };
}
