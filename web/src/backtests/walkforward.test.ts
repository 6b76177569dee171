import { describe, expect, it } from "vitest";
import { walkForwardReport } from "./walkforward";

describe("walkForwardReport", () => {
  it("is null for a sweep without walk-forward", () => {
    expect(walkForwardReport({ metric: "sharpe" })).toBeNull();
    expect(walkForwardReport(null)).toBeNull();
  });
  it("reads the worker's folds, a fold without a best one included", () => {
    const report = walkForwardReport({
      walk_forward: {
        metric: "sharpe",
        out_of_sample_return: 0.125,
        folds: [
          { fold: 0, train: [0, 200], test: [200, 250], best: { index: 3, params: { fast: 5 }, train: 1.4, test: { total_return: 0.1, sharpe: null } } },
          { fold: 1, train: [50, 250], test: [250, 300], best: null },
        ],
      },
    });
    expect(report).toEqual({
      metric: "sharpe",
      outOfSampleReturn: 0.125,
      folds: [
        { fold: 0, train: [0, 200], test: [200, 250], best: { index: 3, params: { fast: 5 }, train: 1.4, test: { total_return: 0.1, sharpe: null } } },
        { fold: 1, train: [50, 250], test: [250, 300], best: null },
      ],
    });
  });
  it("drops malformed folds instead of failing the page", () => {
    const report = walkForwardReport({ walk_forward: { folds: [{ fold: 0, train: [0], test: [1, 2] }, "x", { fold: 2, train: [0, 1], test: [1, 2], best: null }] } });
    expect(report?.folds.map((f) => f.fold)).toEqual([2]);
    expect(report?.outOfSampleReturn).toBeNull();
  });
});
