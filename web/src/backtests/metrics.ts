/**
 * The platform's metrics (docs/backtesting.md, `algotrade.metrics`) as the pages show them:
 * which are fractions shown as percentages, which are better lower, and their order in a table.
 */

/** Ranked the other way round by the service (sweep results): lower is better. */
export const LOWER_IS_BETTER = new Set(["max_drawdown", "max_drawdown_duration", "volatility"]);

const PERCENT = new Set([
  "total_return",
  "cagr",
  "volatility",
  "max_drawdown",
  "win_rate",
  "exposure",
  "benchmark_return",
  "out_of_sample_return",
]);

const COUNTS = new Set(["trade_count", "open_trades", "max_drawdown_duration"]);

/** The table's order; metrics the service adds later follow, by name. */
export const METRIC_ORDER = [
  "total_return",
  "final_equity",
  "cagr",
  "sharpe",
  "sortino",
  "calmar",
  "volatility",
  "max_drawdown",
  "max_drawdown_duration",
  "trade_count",
  "open_trades",
  "win_rate",
  "profit_factor",
  "expectancy",
  "avg_win",
  "avg_loss",
  "exposure",
  "turnover",
  "benchmark_return",
];

export function metricLabel(key: string): string {
  return key.replace(/_/g, " ");
}

/** A metric's value for display; null (undefined by definition: no trades, no losses) is "—". */
export function formatMetric(key: string, value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return "—";
  if (PERCENT.has(key)) return `${(value * 100).toFixed(2)} %`;
  if (COUNTS.has(key)) return value.toLocaleString("en-US", { maximumFractionDigits: 0 });
  if (Math.abs(value) >= 1000) return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
  return Number(value.toPrecision(4)).toString();
}

/** The numeric entries of a summary, in table order (nested objects such as `beta1` are left out). */
export function metricRows(summary: Record<string, unknown> | null | undefined): [string, number | null][] {
  if (!summary) return [];
  const rows = Object.entries(summary).filter(
    (e): e is [string, number | null] => e[1] === null || typeof e[1] === "number",
  );
  const rank = (k: string) => {
    const i = METRIC_ORDER.indexOf(k);
    return i === -1 ? METRIC_ORDER.length : i;
  };
  return rows.sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The metrics in a job's summary (`summary.metrics`; a sweep's are its best combination's). */
export function summaryMetrics(summary: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  const metrics = summary?.metrics;
  return typeof metrics === "object" && metrics !== null && !Array.isArray(metrics) ? (metrics as Record<string, unknown>) : null;
}
