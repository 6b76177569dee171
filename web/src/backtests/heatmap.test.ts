import { describe, expect, it } from "vitest";
import { cellColour, heatmapMatrix, sweptParameters, type SweepResultLike } from "./heatmap";

const result = (fast: number, slow: number, sharpe: number | null, extra: Record<string, number> = {}): SweepResultLike => ({
  params: { fast, slow, ...extra },
  metrics: { sharpe, max_drawdown: sharpe === null ? null : 1 / (sharpe + 10) },
});

describe("heatmapMatrix", () => {
  it("lays the metric out with x as columns and y as rows, both ascending", () => {
    const h = heatmapMatrix([result(10, 50, 1), result(5, 50, 2), result(10, 30, 3), result(5, 30, 4)], "fast", "slow", "sharpe");
    expect(h.xs).toEqual([5, 10]);
    expect(h.ys).toEqual([30, 50]);
    expect(h.cells).toEqual([
      [4, 3],
      [2, 1],
    ]);
    expect([h.min, h.max]).toEqual([1, 4]);
  });

  it("keeps the best combination when other parameters vary under one cell", () => {
    const rs = [result(5, 30, 1, { stop: 1 }), result(5, 30, 3, { stop: 2 }), result(5, 30, 2, { stop: 3 })];
    expect(heatmapMatrix(rs, "fast", "slow", "sharpe").cells).toEqual([[3]]);
    // max_drawdown is better lower: the smallest wins (sharpe 3 gives 1/13)
    expect(heatmapMatrix(rs, "fast", "slow", "max_drawdown").cells[0]![0]).toBeCloseTo(1 / 13, 12);
  });

  it("leaves a cell empty when no combination has a value there", () => {
    const h = heatmapMatrix([result(5, 30, null), result(10, 30, 2), result(5, 50, 1)], "fast", "slow", "sharpe");
    expect(h.cells).toEqual([
      [null, 2],
      [1, null],
    ]);
  });

  it("is empty without results", () => {
    expect(heatmapMatrix([], "fast", "slow", "sharpe")).toEqual({ xs: [], ys: [], cells: [], min: null, max: null });
  });
});

describe("sweptParameters", () => {
  it("names the parameters that take more than one value", () => {
    expect(sweptParameters([result(5, 30, 1, { stop: 2 }), result(10, 30, 1, { stop: 3 })])).toEqual(["fast", "stop"]);
  });
});

describe("cellColour", () => {
  it("goes from red (worst) to green (best), turned round for lower-is-better metrics", () => {
    expect(cellColour(0, 0, 1, "sharpe")).toBe("rgb(220, 38, 38)");
    expect(cellColour(1, 0, 1, "sharpe")).toBe("rgb(22, 163, 74)");
    expect(cellColour(0, 0, 1, "max_drawdown")).toBe("rgb(22, 163, 74)");
    expect(cellColour(null, 0, 1, "sharpe")).toBe("rgb(229, 231, 235)");
  });
});
