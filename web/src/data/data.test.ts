import { describe, expect, it } from "vitest";
import { coverage, fileFormat, formatBytes, importProblems, MAX_UPLOAD_BYTES, replayBody, replayProblems, replayProgress, type ReplayDraft } from "./data";

const draft: ReplayDraft = { symbol: "BTC-USD", owner: null, timeframe: "1m", from: "", to: "", speed: "60", target: "" };

describe("the data page", () => {
  it("measures coverage as the share of expected bars present", () => {
    expect(coverage({ expected: 200, present: 150 })).toBe(0.75);
    expect(coverage({ expected: 0, present: 0 })).toBe(1);
    expect(coverage({ expected: 10, present: 12 })).toBe(1);
  });

  it("formats sizes and detects formats by name", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MiB");
    expect(fileFormat("EURUSD_M1.CSV")).toBe("csv");
    expect(fileFormat("bars.csv.gz")).toBe("csv");
    expect(fileFormat("bars.parquet")).toBe("parquet");
    expect(fileFormat("bars.xlsx")).toBeNull();
  });

  it("says what an import still needs", () => {
    expect(importProblems(null, "", "1m")).toEqual(["a CSV or Parquet file", "a symbol"]);
    expect(importProblems({ name: "a.csv", size: MAX_UPLOAD_BYTES + 1 }, "EURUSD", "1m")).toHaveLength(1);
    expect(importProblems({ name: "a.csv", size: 10 }, "EURUSD", "2m")).toEqual(["a timeframe"]);
    expect(importProblems({ name: "a.csv", size: 10 }, "EURUSD", "1h")).toEqual([]);
  });

  it("builds a replay from the form: both days or neither, a speed, a replay target", () => {
    expect(replayProblems(draft)).toEqual([]);
    expect(replayProblems({ ...draft, from: "2026-01-01" })).toEqual(["a date range (both days, or neither)"]);
    expect(replayProblems({ ...draft, speed: "0" })).toEqual(["a speed above 0, or max"]);
    expect(replayProblems({ ...draft, target: "BTC-USD" })).toHaveLength(1);
    expect(replayProblems({ ...draft, target: "BTC-USD.R1" })).toEqual([]);
    expect(replayBody({ ...draft, from: "2026-01-01", to: "2026-01-02", speed: "max" })).toEqual({
      symbol: "BTC-USD",
      owner: "platform",
      timeframe: "1m",
      speed: "max",
      start: "2026-01-01T00:00:00.000Z",
      end: "2026-01-03T00:00:00.000Z",
      target_symbol: null,
    });
    expect(replayBody({ ...draft, owner: "u1" }).owner).toBe("u1");
    expect(replayProgress({ bars_emitted: 5, bars_total: 20 })).toBe(0.25);
    expect(replayProgress({ bars_emitted: 0, bars_total: 0 })).toBe(0);
  });
});
