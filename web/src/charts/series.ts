/**
 * Pure shaping of API answers into chart series: timestamps in the charting library's unit,
 * drawdown from an equity curve, and trade markers snapped onto the bars they happened in.
 * Kept free of the charting library itself so the initial bundle and the tests need none of it.
 */

/** Seconds since the epoch, what lightweight-charts calls `UTCTimestamp`. */
export function toSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

export interface TimeValue {
  time: number;
  value: number;
}

/**
 * Points sorted by time with one point per time (the last one wins): the charting library
 * throws on a time that does not strictly grow, and a down-sampled or live curve can repeat one.
 */
export function strictlyAscending<T extends { time: number }>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.time - b.time);
  const out: T[] = [];
  for (const p of sorted) {
    if (out.length > 0 && out[out.length - 1]!.time === p.time) out[out.length - 1] = p;
    else out.push(p);
  }
  return out;
}

/**
 * Drawdown at each point as a positive fraction, 1 − equity / running peak (the platform's
 * definition, docs/backtesting.md); `initialPeak` is the capital the run started with, when known.
 */
export function drawdownSeries(equity: readonly TimeValue[], initialPeak?: number): TimeValue[] {
  let peak = initialPeak ?? -Infinity;
  return equity.map(({ time, value }) => {
    peak = Math.max(peak, value);
    return { time, value: peak > 0 ? 1 - value / peak : 0 };
  });
}

export interface TradeLike {
  side: "long" | "short";
  entry_time: string;
  entry_price: number;
  exit_time: string;
  exit_price: number;
  is_open?: boolean;
}

export interface TradeMarker {
  time: number;
  position: "aboveBar" | "belowBar";
  shape: "arrowUp" | "arrowDown";
  color: string;
  text: string;
}

export const BUY_COLOUR = "#15803d";
export const SELL_COLOUR = "#c62828";

/**
 * The bar time at or before `t` in `barTimes` (sorted ascending): a fill lands inside a bar,
 * and a marker between bars would not be drawn. Before the first bar: null.
 */
export function snapToBar(barTimes: readonly number[], t: number): number | null {
  let lo = 0;
  let hi = barTimes.length - 1;
  let found: number | null = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (barTimes[mid]! <= t) {
      found = barTimes[mid]!;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * One marker per fill: a buy (a long's entry, a short's exit) is an up arrow under the bar, a
 * sell an arrow down over it. An open trade has no exit marker. Markers are sorted by time (the
 * library wants them so); with `barTimes`, each is snapped onto its bar and fills outside the
 * bars shown are left out. Without `labels` the arrows carry no text (many trades would bury
 * the candles under their prices).
 */
export function tradeMarkers(
  trades: readonly TradeLike[],
  barTimes?: readonly number[],
  { labels = true }: { labels?: boolean } = {},
): TradeMarker[] {
  const markers: TradeMarker[] = [];
  const add = (iso: string, buy: boolean, label: string) => {
    const text = labels ? label : "";
    let time: number | null = toSeconds(iso);
    if (barTimes !== undefined) {
      const last = barTimes[barTimes.length - 1];
      time = last === undefined || time > last + barStep(barTimes) ? null : snapToBar(barTimes, time);
    }
    if (time === null) return;
    markers.push(
      buy
        ? { time, position: "belowBar", shape: "arrowUp", color: BUY_COLOUR, text }
        : { time, position: "aboveBar", shape: "arrowDown", color: SELL_COLOUR, text },
    );
  };
  for (const t of trades) {
    const long = t.side === "long";
    add(t.entry_time, long, `${long ? "Buy" : "Short"} @ ${formatPrice(t.entry_price)}`);
    if (!t.is_open) add(t.exit_time, !long, `${long ? "Sell" : "Cover"} @ ${formatPrice(t.exit_price)}`);
  }
  return markers.sort((a, b) => a.time - b.time);
}

/** The bars' spacing (the last gap), so a fill inside the last bar still lands on it. */
function barStep(barTimes: readonly number[]): number {
  const n = barTimes.length;
  return n >= 2 ? barTimes[n - 1]! - barTimes[n - 2]! : 0;
}

export function formatPrice(p: number): string {
  return Math.abs(p) >= 1000 ? p.toFixed(2) : Number(p.toPrecision(6)).toString();
}

/** A duration for people: "42 s", "17 min", "5 h 3 min", "12 d 4 h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400).toLocaleString("en-US")} d ${Math.floor((s % 86_400) / 3600)} h`;
}
