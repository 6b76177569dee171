/**
 * Pure pieces of the launch forms (backtest, sweep, session): the date range as the API wants
 * it, a default range from the data a symbol has, parameter values and sweep ranges.
 */
import type { Tunable } from "../editor/graph";

export const TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

const DAY_MS = 86_400_000;

/**
 * `from` and `to` (YYYY-MM-DD, both included, UTC days) as the API's `start` and exclusive
 * `end`; null when either is missing or the range is empty.
 */
export function dateRange(from: string, to: string): { start: string; end: string } | null {
  const a = Date.parse(`${from}T00:00:00Z`);
  const b = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(a) || Number.isNaN(b) || b < a) return null;
  return { start: new Date(a).toISOString(), end: new Date(b + DAY_MS).toISOString() };
}

/** The UTC day of an ISO time, as a date input wants it. */
export function isoDay(iso: string): string {
  return new Date(iso).toISOString().slice(0, 10);
}

/**
 * A range to start from, given the first and last bar a series has: its last `days` days
 * (all of it when shorter).
 */
export function defaultRange(first: string, last: string, days = 365): { from: string; to: string } {
  const lastMs = Date.parse(last);
  const fromMs = Math.max(Date.parse(first), lastMs - days * DAY_MS);
  return { from: isoDay(new Date(fromMs).toISOString()), to: isoDay(last) };
}

/**
 * The tunable values typed into the form, as the API's `params`: empty fields and values equal
 * to the default are left out (the graph's default applies); anything not a number is an error.
 */
export function paramValues(
  tunables: Record<string, Tunable>,
  typed: Record<string, string>,
): { params: Record<string, number>; errors: Record<string, string> } {
  const params: Record<string, number> = {};
  const errors: Record<string, string> = {};
  for (const [name, t] of Object.entries(tunables)) {
    const raw = (typed[name] ?? "").trim();
    if (raw === "") continue;
    const v = Number(raw);
    if (!Number.isFinite(v)) errors[name] = "not a number";
    else if (v < t.min || v > t.max) errors[name] = `outside ${t.min}…${t.max}`;
    else if (v !== t.default) params[name] = v;
  }
  return { params, errors };
}

export interface SweepRange {
  enabled: boolean;
  min: string;
  max: string;
  step: string;
}

/** A tunable's sweep row to start from: its declared range and step (1 when it has none). */
export function defaultSweepRange(t: Tunable): SweepRange {
  return { enabled: true, min: String(t.min), max: String(t.max), step: String(t.step ?? 1) };
}

/** How many values `min..max` by `step` takes (both ends included, as the service counts). */
export function valuesInRange(min: number, max: number, step: number): number {
  if (!(step > 0) || max < min) return 0;
  return Math.floor((max - min) / step + 1e-9) + 1;
}

/**
 * The sweep's `search.parameters` from the enabled rows, and the grid's size (the product of
 * each range's count); errors name the rows at fault.
 */
export function sweepSpace(rows: Record<string, SweepRange>): {
  parameters: Record<string, { min: number; max: number; step: number }>;
  combinations: number;
  errors: Record<string, string>;
} {
  const parameters: Record<string, { min: number; max: number; step: number }> = {};
  const errors: Record<string, string> = {};
  let combinations = 1;
  for (const [name, row] of Object.entries(rows)) {
    if (!row.enabled) continue;
    const [min, max, step] = [Number(row.min), Number(row.max), Number(row.step)];
    if (![min, max, step].every(Number.isFinite)) errors[name] = "min, max and step must be numbers";
    else if (step <= 0) errors[name] = "step must be above 0";
    else if (max < min) errors[name] = "max is below min";
    else {
      parameters[name] = { min, max, step };
      combinations *= valuesInRange(min, max, step);
    }
  }
  return { parameters, combinations: Object.keys(parameters).length === 0 ? 0 : combinations, errors };
}

/**
 * The last day a run covers, for display: its exclusive `end` minus a day when that end is a
 * midnight (what the form sends), else the end's own day.
 */
export function lastDay(end: string): string {
  const ms = Date.parse(end);
  return isoDay(new Date(ms % DAY_MS === 0 ? ms - DAY_MS : ms).toISOString());
}

const ACCESS_RANK = { owner: 0, shared: 1, public: 2 } as const;

/**
 * One entry per symbol name, the series a run would read: your own, else one shared with you,
 * else the platform's (the API's default resolution, docs/market-data.md "Owners"); by name.
 */
export function symbolChoices<S extends { symbol: string; access: keyof typeof ACCESS_RANK }>(symbols: readonly S[]): S[] {
  const best = new Map<string, S>();
  for (const s of symbols) {
    const current = best.get(s.symbol);
    if (current === undefined || ACCESS_RANK[s.access] < ACCESS_RANK[current.access]) best.set(s.symbol, s);
  }
  return [...best.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
}

/** The walk-forward fields as typed: off, or train/test (and an optional step) in bars. */
export interface WalkForwardFields {
  enabled: boolean;
  train: string;
  test: string;
  step: string;
}

export interface WalkForwardSpec {
  train_bars: number;
  test_bars: number;
  step_bars?: number;
}

/**
 * The sweep's `walk_forward` (null when off), or what is wrong with the fields. `bars`, when
 * known, is how many bars the range holds: one train window and one test window must fit.
 */
export function walkForwardSpec(
  fields: WalkForwardFields,
  bars?: number,
): { spec: WalkForwardSpec | null; error: string | null } {
  if (!fields.enabled) return { spec: null, error: null };
  const whole = (text: string) => (/^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN);
  const [train, test] = [whole(fields.train), whole(fields.test)];
  const step = fields.step.trim() === "" ? undefined : whole(fields.step);
  if (!(train >= 1) || !(test >= 1)) return { spec: null, error: "walk-forward: train and test are whole numbers of bars ≥ 1" };
  if (step !== undefined && !(step >= 1)) return { spec: null, error: "walk-forward: the step is a whole number of bars ≥ 1" };
  if (bars !== undefined && train + test > bars)
    return { spec: null, error: `walk-forward: one train and one test window take ${train + test} bars; the range has ${bars}` };
  return { spec: { train_bars: train, test_bars: test, ...(step !== undefined ? { step_bars: step } : {}) }, error: null };
}
