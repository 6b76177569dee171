import { describe, expect, it } from "vitest";
import { formatMetric, metricRows, summaryMetrics } from "./metrics";

describe("formatMetric", () => {
  it("shows fractions as percentages, counts whole and undefined values as a dash", () => {
    expect(formatMetric("total_return", 0.1234)).toBe("12.34 %");
    expect(formatMetric("trade_count", 12)).toBe("12");
    expect(formatMetric("sharpe", 1.23456)).toBe("1.235");
    expect(formatMetric("final_equity", 123456.789)).toBe("123,456.79");
    expect(formatMetric("profit_factor", null)).toBe("—");
  });
});

describe("metricRows", () => {
  it("lists numeric metrics in table order, unknown ones after by name, nested values left out", () => {
    expect(metricRows({ zeta: 1, sharpe: 2, total_return: 0.1, alpha: null, beta1: { x: 1 } }).map(([k]) => k)).toEqual([
      "total_return",
      "sharpe",
      "alpha",
      "zeta",
    ]);
  });
});

describe("summaryMetrics", () => {
  it("finds the metrics in a job's summary, or none", () => {
    expect(summaryMetrics({ metrics: { sharpe: 1 }, calendar: "24x7" })).toEqual({ sharpe: 1 });
    expect(summaryMetrics({ calendar: "24x7" })).toBeNull();
    expect(summaryMetrics(null)).toBeNull();
  });
});
