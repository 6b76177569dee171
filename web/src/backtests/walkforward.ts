/** A sweep's walk-forward report (`summary.walk_forward`, written by the worker), read safely. */

export interface Fold {
  fold: number;
  /** bar index range [from, to) of the train and test windows */
  train: [number, number];
  test: [number, number];
  /** the best combination on the train window, or null when none had a value there */
  best: { index: number; params: Record<string, number>; train: number | null; test: Record<string, number | null> } | null;
}

export interface WalkForwardReport {
  metric: string;
  folds: Fold[];
  outOfSampleReturn: number | null;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const range = (v: unknown): [number, number] | null =>
  Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number") ? [v[0] as number, v[1] as number] : null;
const numberOrNull = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The report in a sweep job's summary, or null when the sweep had no walk-forward. */
export function walkForwardReport(summary: Record<string, unknown> | null | undefined): WalkForwardReport | null {
  const raw = summary?.walk_forward;
  if (!isRecord(raw) || !Array.isArray(raw.folds)) return null;
  const folds: Fold[] = [];
  for (const f of raw.folds) {
    if (!isRecord(f)) continue;
    const [train, test] = [range(f.train), range(f.test)];
    if (train === null || test === null || typeof f.fold !== "number") continue;
    const b = f.best;
    const best = isRecord(b)
      ? {
          index: typeof b.index === "number" ? b.index : -1,
          params: isRecord(b.params) ? (Object.fromEntries(Object.entries(b.params).filter(([, v]) => typeof v === "number")) as Record<string, number>) : {},
          train: numberOrNull(b.train),
          test: isRecord(b.test) ? Object.fromEntries(Object.entries(b.test).map(([k, v]) => [k, numberOrNull(v)])) : {},
        }
      : null;
    folds.push({ fold: f.fold, train, test, best });
  }
  return {
    metric: typeof raw.metric === "string" ? raw.metric : "sharpe",
    folds,
    outOfSampleReturn: numberOrNull(raw.out_of_sample_return),
  };
}
