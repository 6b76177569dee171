/**
 * The analytics service's reports (docs/analytics.md) as the tear sheet reads them. The API
 * types them as free-form JSON, so every field is checked here once: a field missing or of
 * another type reads as absent, never as a crash in a page.
 */
import type { TimeValue } from "../charts/series";

export interface VarRow {
  method: string;
  confidence: number;
  horizon: number;
  var: number | null;
  cvar: number | null;
}

export interface DrawdownEpisode {
  start: number;
  trough: number;
  recovery: number | null;
  depth: number;
  length: number;
  to_trough: number;
  recovery_bars: number | null;
}

export interface MonthlyReturn {
  year: number;
  month: number;
  return: number | null;
}

export interface PortfolioMember {
  id: string;
  kind: string;
  name: string;
  symbol: string;
  timeframe: string;
  weight: number | null;
  total_return: number | null;
  sharpe: number | null;
  max_drawdown: number | null;
  exposure: number | null;
}

export interface Report {
  kind: string;
  title: string;
  subtitle: string;
  period: { start: string | null; end: string | null; bars: number; timeframe: string };
  conventions: Record<string, unknown>;
  metrics: Record<string, unknown>;
  equity: TimeValue[];
  benchmark: TimeValue[];
  drawdown: TimeValue[];
  rollingSharpe: TimeValue[];
  rollingVolatility: TimeValue[];
  rollingWindow: number | null;
  monthly: MonthlyReturn[];
  histogram: { edges: number[]; counts: number[] };
  varRows: VarRow[];
  beta: Record<string, unknown> | null;
  drawdowns: DrawdownEpisode[];
  trades: Record<string, unknown> | null;
  coverage: { points: number; expected: number; complete: boolean } | null;
  members: PortfolioMember[];
  correlation: { labels: string[]; matrix: (number | null)[][] } | null;
  exposure: { bySymbol: { symbol: string; weight: number; exposure: number }[]; hhi: number | null; effective: number | null } | null;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | null => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown, fallback = ""): string => (typeof v === "string" ? v : fallback);

/** Bar times in epoch milliseconds and values (null where undefined) as chart points. */
export function seriesPoints(ts: unknown, values: unknown): TimeValue[] {
  const times = arr(ts);
  const vals = arr(values);
  const points: TimeValue[] = [];
  for (let i = 0; i < Math.min(times.length, vals.length); i++) {
    const t = num(times[i]);
    const v = num(vals[i]);
    if (t !== null && v !== null) points.push({ time: Math.floor(t / 1000), value: v });
  }
  return points;
}

export function readReport(json: unknown): Report {
  const r = obj(json) ?? {};
  const period = obj(r.period) ?? {};
  const series = obj(r.series) ?? {};
  const risk = obj(r.risk) ?? {};
  const histogram = obj(r.return_histogram) ?? {};
  const coverage = obj(r.coverage);
  const correlation = obj(r.correlation);
  const exposure = obj(r.exposure);
  return {
    kind: str(r.kind),
    title: str(r.title, "Report"),
    subtitle: str(r.subtitle),
    period: { start: typeof period.start === "string" ? period.start : null, end: typeof period.end === "string" ? period.end : null, bars: num(period.bars) ?? 0, timeframe: str(period.timeframe) },
    conventions: obj(r.conventions) ?? {},
    metrics: obj(r.metrics) ?? {},
    equity: seriesPoints(series.ts, series.equity),
    benchmark: seriesPoints(series.ts, series.benchmark),
    drawdown: seriesPoints(series.ts, series.drawdown),
    rollingSharpe: seriesPoints(series.ts, series.rolling_sharpe),
    rollingVolatility: seriesPoints(series.ts, series.rolling_volatility),
    rollingWindow: num(series.rolling_window),
    monthly: arr(r.monthly_returns)
      .map(obj)
      .filter((m): m is Obj => m !== null && num(m.year) !== null && num(m.month) !== null)
      .map((m) => ({ year: num(m.year)!, month: num(m.month)!, return: num(m.return) })),
    histogram: { edges: arr(histogram.edges).map((e) => num(e) ?? 0), counts: arr(histogram.counts).map((c) => num(c) ?? 0) },
    varRows: arr(risk.var)
      .map(obj)
      .filter((v): v is Obj => v !== null)
      .map((v) => ({ method: str(v.method), confidence: num(v.confidence) ?? 0, horizon: num(v.horizon) ?? 1, var: num(v.var), cvar: num(v.cvar) })),
    beta: obj(risk.beta),
    drawdowns: arr(r.drawdowns)
      .map(obj)
      .filter((d): d is Obj => d !== null && num(d.start) !== null)
      .map((d) => ({
        start: num(d.start)!,
        trough: num(d.trough) ?? num(d.start)!,
        recovery: num(d.recovery),
        depth: num(d.depth) ?? 0,
        length: num(d.length) ?? 0,
        to_trough: num(d.to_trough) ?? 0,
        recovery_bars: num(d.recovery_bars),
      })),
    trades: obj(r.trades),
    coverage: coverage ? { points: num(coverage.points) ?? 0, expected: num(coverage.expected) ?? 0, complete: coverage.complete === true } : null,
    members: arr(r.members)
      .map(obj)
      .filter((m): m is Obj => m !== null)
      .map((m) => ({
        id: str(m.id),
        kind: str(m.kind),
        name: str(m.name, str(m.id)),
        symbol: str(m.symbol),
        timeframe: str(m.timeframe),
        weight: num(m.weight),
        total_return: num(m.total_return),
        sharpe: num(m.sharpe),
        max_drawdown: num(m.max_drawdown),
        exposure: num(m.exposure),
      })),
    correlation: correlation
      ? { labels: arr(correlation.labels).map((l) => str(l)), matrix: arr(correlation.matrix).map((row) => arr(row).map(num)) }
      : null,
    exposure: exposure
      ? {
          bySymbol: arr(exposure.by_symbol)
            .map(obj)
            .filter((s): s is Obj => s !== null)
            .map((s) => ({ symbol: str(s.symbol), weight: num(s.weight) ?? 0, exposure: num(s.exposure) ?? 0 })),
          hhi: num(exposure.hhi),
          effective: num(exposure.effective_symbols),
        }
      : null,
  };
}

export interface MonthlyRow {
  year: number;
  /** January to December; null where the run had no bar that month. */
  months: (number | null)[];
  /** The months compounded; null when none has a return. */
  year_return: number | null;
}

/** Monthly returns as a year-by-month grid, oldest year first. */
export function monthlyGrid(monthly: readonly MonthlyReturn[]): MonthlyRow[] {
  const years = new Map<number, (number | null)[]>();
  for (const m of monthly) {
    if (m.month < 1 || m.month > 12) continue;
    const row = years.get(m.year) ?? Array<number | null>(12).fill(null);
    row[m.month - 1] = m.return;
    years.set(m.year, row);
  }
  return [...years.entries()]
    .sort(([a], [b]) => a - b)
    .map(([year, months]) => {
      const known = months.filter((v): v is number => v !== null);
      return { year, months, year_return: known.length === 0 ? null : known.reduce((acc, r) => acc * (1 + r), 1) - 1 };
    });
}

/** A return's background: green for gains, red for losses, stronger with size (10 % is full). */
export function returnColour(r: number | null): string | undefined {
  if (r === null) return undefined;
  const a = Math.min(1, Math.abs(r) / 0.1) * 0.6 + 0.08;
  return r >= 0 ? `rgba(21, 128, 61, ${a.toFixed(2)})` : `rgba(198, 40, 40, ${a.toFixed(2)})`;
}

export function percent(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? "—" : `${(v * 100).toFixed(digits)} %`;
}

export function utcDay(ms: number | null): string {
  return ms === null ? "—" : new Date(ms).toISOString().slice(0, 10);
}
