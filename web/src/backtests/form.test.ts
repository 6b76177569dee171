import { describe, expect, it } from "vitest";
import { dateRange, defaultRange, lastDay, paramValues, sweepSpace, symbolChoices, valuesInRange, walkForwardSpec } from "./form";

describe("dateRange", () => {
  it("turns two included UTC days into start and an exclusive end", () => {
    expect(dateRange("2024-01-01", "2024-01-31")).toEqual({
      start: "2024-01-01T00:00:00.000Z",
      end: "2024-02-01T00:00:00.000Z",
    });
  });
  it("is null for a missing day or a reversed range", () => {
    expect(dateRange("", "2024-01-31")).toBeNull();
    expect(dateRange("2024-02-01", "2024-01-31")).toBeNull();
  });
});

describe("defaultRange", () => {
  it("takes the last year of the data, or all of it when shorter", () => {
    expect(defaultRange("2020-01-01T00:00:00Z", "2024-06-30T23:00:00Z")).toEqual({ from: "2023-07-01", to: "2024-06-30" });
    expect(defaultRange("2024-06-01T00:00:00Z", "2024-06-30T23:00:00Z")).toEqual({ from: "2024-06-01", to: "2024-06-30" });
  });
});

describe("paramValues", () => {
  const tunables = { fast: { default: 10, min: 2, max: 50 }, slow: { default: 30, min: 10, max: 200 } };
  it("sends only the values that differ from the default", () => {
    expect(paramValues(tunables, { fast: "12", slow: "30" })).toEqual({ params: { fast: 12 }, errors: {} });
    expect(paramValues(tunables, {})).toEqual({ params: {}, errors: {} });
  });
  it("names a value that is not a number or is out of range", () => {
    expect(paramValues(tunables, { fast: "x", slow: "500" }).errors).toEqual({ fast: "not a number", slow: "outside 10…200" });
  });
});

describe("sweep ranges", () => {
  it("counts both ends of a range", () => {
    expect(valuesInRange(5, 20, 5)).toBe(4);
    expect(valuesInRange(0.1, 0.3, 0.1)).toBe(3);
    expect(valuesInRange(5, 5, 1)).toBe(1);
    expect(valuesInRange(5, 4, 1)).toBe(0);
  });
  it("builds the search space of the enabled rows and the grid's size", () => {
    const space = sweepSpace({
      fast: { enabled: true, min: "5", max: "20", step: "5" },
      slow: { enabled: true, min: "20", max: "60", step: "10" },
      stop: { enabled: false, min: "1", max: "3", step: "1" },
    });
    expect(space.parameters).toEqual({ fast: { min: 5, max: 20, step: 5 }, slow: { min: 20, max: 60, step: 10 } });
    expect(space.combinations).toBe(20);
    expect(space.errors).toEqual({});
  });
  it("names a bad row and counts nothing without rows", () => {
    expect(sweepSpace({ fast: { enabled: true, min: "5", max: "1", step: "1" } }).errors).toEqual({ fast: "max is below min" });
    expect(sweepSpace({}).combinations).toBe(0);
  });
});

describe("lastDay", () => {
  it("shows the last day included: the day before a midnight end", () => {
    expect(lastDay("2021-04-01T00:00:00Z")).toBe("2021-03-31");
    expect(lastDay("2021-04-01T15:00:00Z")).toBe("2021-04-01");
  });
});

describe("symbolChoices", () => {
  it("keeps the series a run reads for each name: own, else shared, else the platform's", () => {
    const choices = symbolChoices([
      { symbol: "SPY", access: "public" as const, owner: null },
      { symbol: "BTC-USD", access: "shared" as const, owner: "u2" },
      { symbol: "SPY", access: "owner" as const, owner: "me" },
      { symbol: "BTC-USD", access: "public" as const, owner: null },
    ]);
    expect(choices.map((c) => [c.symbol, c.access])).toEqual([
      ["BTC-USD", "shared"],
      ["SPY", "owner"],
    ]);
  });
});

describe("walkForwardSpec", () => {
  const on = { enabled: true, train: "200", test: "50", step: "" };
  it("is null when off, whatever the fields hold", () => {
    expect(walkForwardSpec({ ...on, enabled: false, train: "x" })).toEqual({ spec: null, error: null });
  });
  it("sends train and test, and the step only when given", () => {
    expect(walkForwardSpec(on).spec).toEqual({ train_bars: 200, test_bars: 50 });
    expect(walkForwardSpec({ ...on, step: "25" }).spec).toEqual({ train_bars: 200, test_bars: 50, step_bars: 25 });
  });
  it("refuses what is not a whole number of bars ≥ 1", () => {
    for (const bad of [{ train: "0" }, { test: "-5" }, { train: "1.5" }, { test: "" }, { step: "0" }, { step: "abc" }]) {
      const result = walkForwardSpec({ ...on, ...bad });
      expect(result.spec).toBeNull();
      expect(result.error).toMatch(/walk-forward/);
    }
  });
  it("refuses windows longer than the range", () => {
    expect(walkForwardSpec(on, 249).error).toMatch(/250 bars; the range has 249/);
    expect(walkForwardSpec(on, 250).spec).not.toBeNull();
  });
});
