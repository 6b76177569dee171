/**
 * Pure pieces of the data page: how much of a series is there, a file's size and format, what
 * an import or a replay form still lacks, and a replay's progress.
 */
import type { components } from "../api/schema";
import { dateRange, TIMEFRAMES, type Timeframe } from "../backtests/form";

export type GapReport = components["schemas"]["GapReport"];
export type ImportJob = components["schemas"]["ImportPublic"];
export type Replay = components["schemas"]["ReplayPublic"];
export type ReplayCreate = components["schemas"]["ReplayCreate"];

/** The upload limit of the market-data service (IMPORT_MAX_UPLOAD_BYTES, 200 MiB by default). */
export const MAX_UPLOAD_BYTES = 200 * 1024 * 1024;

/** The share of expected bars present (1 when the calendar expects none). */
export function coverage(report: Pick<GapReport, "expected" | "present">): number {
  if (report.expected <= 0) return 1;
  return Math.min(1, report.present / report.expected);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A file's format from its name, as the service detects it first (then by magic bytes). */
export function fileFormat(name: string): "csv" | "parquet" | null {
  const n = name.toLowerCase();
  if (n.endsWith(".parquet") || n.endsWith(".pq")) return "parquet";
  if (n.endsWith(".csv") || n.endsWith(".csv.gz") || n.endsWith(".txt")) return "csv";
  return null;
}

const SYMBOL = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/;

export function importProblems(file: { name: string; size: number } | null, symbol: string, timeframe: string): string[] {
  const p: string[] = [];
  if (file === null) p.push("a CSV or Parquet file");
  else if (file.size === 0) p.push("a file that is not empty");
  else if (file.size > MAX_UPLOAD_BYTES) p.push(`a file of at most ${formatBytes(MAX_UPLOAD_BYTES)}`);
  if (!SYMBOL.test(symbol.trim())) p.push("a symbol");
  if (!(TIMEFRAMES as readonly string[]).includes(timeframe)) p.push("a timeframe");
  return p;
}

export interface ReplayDraft {
  symbol: string;
  owner: string | null;
  timeframe: Timeframe;
  from: string;
  to: string;
  speed: string;
  target: string;
}

/** What a replay form still lacks; empty when `replayBody` can be sent. */
export function replayProblems(d: ReplayDraft): string[] {
  const p: string[] = [];
  if (d.symbol === "") p.push("a symbol");
  if ((d.from === "") !== (d.to === "") || (d.from !== "" && dateRange(d.from, d.to) === null)) p.push("a date range (both days, or neither)");
  if (d.speed !== "max" && !(Number(d.speed) > 0)) p.push("a speed above 0, or max");
  if (d.target.trim() !== "" && !/\.R[A-Za-z0-9]+$/.test(d.target.trim())) p.push("a target symbol ending in .R and letters or digits");
  return p;
}

export function replayBody(d: ReplayDraft): ReplayCreate {
  const range = d.from !== "" ? dateRange(d.from, d.to) : null;
  return {
    symbol: d.symbol,
    owner: d.owner ?? "platform",
    timeframe: d.timeframe,
    speed: d.speed === "max" ? "max" : Number(d.speed),
    start: range?.start ?? null,
    end: range?.end ?? null,
    target_symbol: d.target.trim() === "" ? null : d.target.trim(),
  };
}

export function replayProgress(r: Pick<Replay, "bars_emitted" | "bars_total">): number {
  return r.bars_total > 0 ? Math.min(1, r.bars_emitted / r.bars_total) : 0;
}

export function importActive(state: ImportJob["state"]): boolean {
  return state === "queued" || state === "running";
}
