/**
 * A sweep's results as a matrix over two of its parameters: one cell per (x, y) pair of values,
 * holding the metric of the best combination with those two values (the other parameters may
 * vary under one cell; the cell shows the best of them, as a ranked table would).
 */
import { LOWER_IS_BETTER } from "./metrics";

export interface SweepResultLike {
  params: Record<string, number>;
  metrics: Record<string, number | null>;
}

export interface Heatmap {
  xs: number[];
  ys: number[];
  /** cells[row][column]: row i is ys[i], column j is xs[j]; null when no result has a value. */
  cells: (number | null)[][];
  min: number | null;
  max: number | null;
}

/** The parameters that take more than one value across `results` (what a heatmap can span). */
export function sweptParameters(results: readonly SweepResultLike[]): string[] {
  const values = new Map<string, Set<number>>();
  for (const r of results) {
    for (const [k, v] of Object.entries(r.params)) {
      if (!values.has(k)) values.set(k, new Set());
      values.get(k)!.add(v);
    }
  }
  return [...values].filter(([, vs]) => vs.size > 1).map(([k]) => k).sort();
}

export function heatmapMatrix(results: readonly SweepResultLike[], x: string, y: string, metric: string): Heatmap {
  const lower = LOWER_IS_BETTER.has(metric);
  const xs = [...new Set(results.map((r) => r.params[x]).filter(isNumber))].sort((a, b) => a - b);
  const ys = [...new Set(results.map((r) => r.params[y]).filter(isNumber))].sort((a, b) => a - b);
  const cells: (number | null)[][] = ys.map(() => xs.map(() => null));
  let min: number | null = null;
  let max: number | null = null;
  for (const r of results) {
    const value = r.metrics[metric];
    const xv = r.params[x];
    const yv = r.params[y];
    if (!isNumber(value) || !isNumber(xv) || !isNumber(yv)) continue;
    const row = cells[ys.indexOf(yv)]!;
    const col = xs.indexOf(xv);
    const current = row[col];
    if (current === null || current === undefined || (lower ? value < current : value > current)) row[col] = value;
  }
  for (const row of cells) {
    for (const v of row) {
      if (v === null) continue;
      min = min === null ? v : Math.min(min, v);
      max = max === null ? v : Math.max(max, v);
    }
  }
  return { xs, ys, cells, min, max };
}

/**
 * A cell's colour from worst (red) through pale yellow to best (green); lower-is-better metrics
 * are turned round. A cell without a value is grey.
 */
export function cellColour(value: number | null, min: number | null, max: number | null, metric: string): string {
  if (value === null || min === null || max === null) return "rgb(229, 231, 235)";
  let t = max === min ? 1 : (value - min) / (max - min);
  if (LOWER_IS_BETTER.has(metric)) t = 1 - t;
  const worst = [220, 38, 38];
  const middle = [254, 240, 138];
  const best = [22, 163, 74];
  const [a, b, u] = t < 0.5 ? [worst, middle, t * 2] : [middle, best, (t - 0.5) * 2];
  const mix = a.map((c, i) => Math.round(c + (b[i]! - c) * u));
  return `rgb(${mix.join(", ")})`;
}

function isNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}
