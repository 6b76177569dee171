import { describe, expect, it } from "vitest";
import { monthlyGrid, percent, readReport, returnColour, seriesPoints } from "./report";

describe("analytics reports", () => {
  it("turns epoch-ms series into chart points, skipping undefined values", () => {
    expect(seriesPoints([60_000, 120_000, 180_000], [1, null, 3])).toEqual([
      { time: 60, value: 1 },
      { time: 180, value: 3 },
    ]);
    expect(seriesPoints(undefined, [1])).toEqual([]);
  });

  it("reads a report, with whatever is missing as absent", () => {
    const r = readReport({
      kind: "backtest",
      title: "BTC-USD 1h backtest",
      period: { start: "2026-01-01T00:00:00Z", end: null, bars: 3, timeframe: "1h" },
      metrics: { sharpe: 1.2 },
      series: { ts: [0, 3_600_000], equity: [100, 110], drawdown: [0, 0], benchmark: null, rolling_window: 20 },
      risk: { var: [{ method: "historical", confidence: 0.95, horizon: 1, var: 0.02, cvar: null }], beta: null },
      drawdowns: [{ start: 0, trough: 5, recovery: null, depth: 0.1, length: 4, to_trough: 2, recovery_bars: null }, "junk"],
      monthly_returns: [{ year: 2026, month: 1, return: 0.1 }, { month: 2 }],
      coverage: { points: 3, expected: 4, complete: false },
    });
    expect(r.title).toBe("BTC-USD 1h backtest");
    expect(r.equity).toEqual([
      { time: 0, value: 100 },
      { time: 3600, value: 110 },
    ]);
    expect(r.benchmark).toEqual([]);
    expect(r.varRows[0]).toEqual({ method: "historical", confidence: 0.95, horizon: 1, var: 0.02, cvar: null });
    expect(r.drawdowns).toHaveLength(1);
    expect(r.monthly).toEqual([{ year: 2026, month: 1, return: 0.1 }]);
    expect(r.coverage).toEqual({ points: 3, expected: 4, complete: false });
    expect(r.members).toEqual([]);
    expect(r.correlation).toBeNull();
    expect(readReport(null).title).toBe("Report");
  });

  it("lays monthly returns out by year and compounds each year", () => {
    const grid = monthlyGrid([
      { year: 2026, month: 2, return: 0.1 },
      { year: 2025, month: 12, return: -0.5 },
      { year: 2026, month: 1, return: 0.1 },
      { year: 2026, month: 3, return: null },
    ]);
    expect(grid.map((g) => g.year)).toEqual([2025, 2026]);
    expect(grid[0]!.months[11]).toBe(-0.5);
    expect(grid[0]!.year_return).toBeCloseTo(-0.5);
    expect(grid[1]!.months.slice(0, 3)).toEqual([0.1, 0.1, null]);
    expect(grid[1]!.year_return).toBeCloseTo(0.21);
  });

  it("colours and formats returns", () => {
    expect(returnColour(null)).toBeUndefined();
    expect(returnColour(0.2)).toBe("rgba(21, 128, 61, 0.68)");
    expect(returnColour(-0.05)).toBe("rgba(198, 40, 40, 0.38)");
    expect(percent(0.1234)).toBe("12.34 %");
    expect(percent(null)).toBe("—");
  });
});
