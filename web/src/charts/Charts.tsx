/**
 * The chart components, over lightweight-charts. Only pages loaded lazily import this module,
 * so the library stays out of the initial bundle. Times are UTC.
 */
import {
  BaselineSeries,
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  LineSeries,
  type IChartApi,
  type ISeriesApi,
  type SeriesType,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";
import type { TimeValue, TradeMarker } from "./series";
import { strictlyAscending } from "./series";

export interface Candle {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
}

const BASE_OPTIONS = {
  autoSize: true,
  layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#1d2330", fontSize: 11 },
  grid: { vertLines: { color: "#eef0f3" }, horzLines: { color: "#eef0f3" } },
  rightPriceScale: { borderColor: "#d8dce3" },
  // a small minimum spacing lets "fit" show a whole run of thousands of bars in a narrow chart
  timeScale: { borderColor: "#d8dce3", timeVisible: true, secondsVisible: false, minBarSpacing: 0.01 },
};

/**
 * A chart in a div that lives as long as the component; `build` adds the series once, `update`
 * gives them their data on every change of `deps` (the view is fitted to the data the first time
 * only, so a live chart keeps the user's zoom).
 */
function useChart<S>(
  build: (chart: IChartApi) => S,
  update: (series: S, chart: IChartApi) => boolean,
  deps: unknown[],
) {
  const container = useRef<HTMLDivElement>(null);
  const state = useRef<{ chart: IChartApi; series: S; fitted: boolean } | null>(null);
  useEffect(() => {
    const chart = createChart(container.current!, BASE_OPTIONS);
    state.current = { chart, series: build(chart), fitted: false };
    return () => {
      chart.remove();
      state.current = null;
    };
    // built once; the data flows through update
    // eslint-disable-next-line react-hooks/exhaustive-deps -- see the line above
  }, []);
  useEffect(() => {
    const s = state.current;
    if (s === null) return;
    const hasData = update(s.series, s.chart);
    if (hasData && !s.fitted) {
      s.chart.timeScale().fitContent();
      s.fitted = true;
    }
    // the caller's deps: `update` is a new function on every render and reads only them
    // eslint-disable-next-line react-hooks/exhaustive-deps -- see the line above
  }, deps);
  return container;
}

const asTime = (t: number) => t as UTCTimestamp;

/** Candles with the trades' fills as markers. */
export function PriceChart({ candles, markers, label }: { candles: Candle[]; markers: TradeMarker[]; label: string }) {
  const ref = useChart(
    (chart) => {
      const series = chart.addSeries(CandlestickSeries, {
        upColor: "#16a34a",
        downColor: "#dc2626",
        borderVisible: false,
        wickUpColor: "#16a34a",
        wickDownColor: "#dc2626",
      });
      return { series, markers: createSeriesMarkers(series, []) };
    },
    ({ series, markers: plugin }) => {
      series.setData(strictlyAscending(candles).map((c) => ({ ...c, time: asTime(c.time) })));
      plugin.setMarkers(markers.map((m) => ({ ...m, time: asTime(m.time) })));
      return candles.length > 0;
    },
    [candles, markers],
  );
  return (
    <div className="chart-frame" data-testid="price-chart">
      <div ref={ref} className="chart chart-price" role="img" aria-label={label} />
      {candles.length === 0 && <div className="chart-empty">No bars in this range</div>}
    </div>
  );
}

/** A line (equity) or an area hanging from zero (drawdown, in percent). */
export function ValueChart({
  points,
  kind,
  label,
  testId,
}: {
  points: TimeValue[];
  kind: "equity" | "drawdown";
  label: string;
  testId: string;
}) {
  const ref = useChart<ISeriesApi<SeriesType>>(
    (chart) =>
      kind === "equity"
        ? chart.addSeries(LineSeries, { color: "#2563eb", lineWidth: 2, priceLineVisible: false })
        : // filled between the curve and zero, so no drawdown shows as no fill
          chart.addSeries(BaselineSeries, {
            baseValue: { type: "price", price: 0 },
            topLineColor: "#c62828",
            topFillColor1: "rgba(198, 40, 40, 0)",
            topFillColor2: "rgba(198, 40, 40, 0)",
            bottomLineColor: "#c62828",
            bottomFillColor1: "rgba(198, 40, 40, 0.1)",
            bottomFillColor2: "rgba(198, 40, 40, 0.4)",
            lineWidth: 1,
            priceLineVisible: false,
            priceFormat: { type: "custom", formatter: (v: number) => `${v.toFixed(2)} %` },
          }),
    (series) => {
      const data = strictlyAscending(points).map((p) => ({
        time: asTime(p.time),
        value: kind === "drawdown" ? -p.value * 100 : p.value,
      }));
      series.setData(data);
      return data.length > 0;
    },
    [points, kind],
  );
  return (
    <div className="chart-frame" data-testid={testId}>
      <div ref={ref} className={`chart chart-${kind}`} role="img" aria-label={label} />
      {points.length === 0 && <div className="chart-empty">No points yet</div>}
    </div>
  );
}
