import { describe, expect, it } from "vitest";
import { drawdownSeries, formatDuration, snapToBar, strictlyAscending, toSeconds, tradeMarkers, type TradeLike } from "./series";

const T0 = toSeconds("2024-01-01T00:00:00Z");
const H = 3600;
const iso = (s: number) => new Date(s * 1000).toISOString();

describe("drawdownSeries", () => {
  it("is 1 - equity / running peak, zero at each new peak", () => {
    const dd = drawdownSeries([
      { time: 1, value: 100 },
      { time: 2, value: 120 },
      { time: 3, value: 90 },
      { time: 4, value: 108 },
      { time: 5, value: 130 },
    ]);
    expect(dd.map((p) => p.time)).toEqual([1, 2, 3, 4, 5]);
    expect(dd.map((p) => p.value)).toEqual([0, 0, 0.25, 0.1, 0].map((v) => expect.closeTo(v, 12)));
  });

  it("counts the initial capital as the first peak", () => {
    const dd = drawdownSeries([{ time: 1, value: 80 }, { time: 2, value: 100 }], 100);
    expect(dd[0]!.value).toBeCloseTo(0.2, 12);
    expect(dd[1]!.value).toBe(0);
  });

  it("is empty for an empty curve", () => {
    expect(drawdownSeries([])).toEqual([]);
  });
});

describe("strictlyAscending", () => {
  it("sorts by time and keeps the last point of a repeated time", () => {
    expect(
      strictlyAscending([
        { time: 3, value: 1 },
        { time: 1, value: 2 },
        { time: 3, value: 4 },
      ]),
    ).toEqual([
      { time: 1, value: 2 },
      { time: 3, value: 4 },
    ]);
  });
});

describe("snapToBar", () => {
  const bars = [10, 20, 30];
  it("finds the bar a time falls in", () => {
    expect(snapToBar(bars, 10)).toBe(10);
    expect(snapToBar(bars, 25)).toBe(20);
    expect(snapToBar(bars, 99)).toBe(30);
  });
  it("is null before the first bar", () => {
    expect(snapToBar(bars, 5)).toBeNull();
    expect(snapToBar([], 5)).toBeNull();
  });
});

describe("tradeMarkers", () => {
  const long: TradeLike = {
    side: "long",
    entry_time: iso(T0 + 2 * H),
    entry_price: 100,
    exit_time: iso(T0 + 5 * H),
    exit_price: 110.5,
  };
  const short: TradeLike = {
    side: "short",
    entry_time: iso(T0 + H),
    entry_price: 50,
    exit_time: iso(T0 + 3 * H),
    exit_price: 45,
  };

  it("marks a long's entry as a buy below the bar and its exit as a sell above it", () => {
    const [entry, exit] = tradeMarkers([long]);
    expect(entry).toMatchObject({ time: T0 + 2 * H, position: "belowBar", shape: "arrowUp", text: "Buy @ 100" });
    expect(exit).toMatchObject({ time: T0 + 5 * H, position: "aboveBar", shape: "arrowDown", text: "Sell @ 110.5" });
  });

  it("marks a short's entry as a sell and its cover as a buy", () => {
    const [entry, exit] = tradeMarkers([short]);
    expect(entry).toMatchObject({ shape: "arrowDown", text: "Short @ 50" });
    expect(exit).toMatchObject({ shape: "arrowUp", text: "Cover @ 45" });
  });

  it("sorts the markers of several trades by time", () => {
    expect(tradeMarkers([long, short]).map((m) => m.time - T0)).toEqual([H, 2 * H, 3 * H, 5 * H]);
  });

  it("can leave the labels out", () => {
    expect(tradeMarkers([long], undefined, { labels: false }).map((m) => m.text)).toEqual(["", ""]);
  });

  it("leaves out an open trade's exit", () => {
    expect(tradeMarkers([{ ...long, is_open: true }])).toHaveLength(1);
  });

  it("snaps fills onto their bars and drops those outside the bars shown", () => {
    const bars = [T0, T0 + 4 * H, T0 + 8 * H]; // 4h bars
    const late: TradeLike = { ...long, entry_time: iso(T0 + 9 * H), exit_time: iso(T0 + 20 * H) };
    const early: TradeLike = { ...long, entry_time: iso(T0 - H), exit_time: iso(T0 + H) };
    expect(tradeMarkers([long, late, early], bars).map((m) => [m.time - T0, m.text.split(" ")[0]])).toEqual([
      [0, "Buy"], // long's entry, inside the first bar
      [0, "Sell"], // early's exit; its entry falls before the first bar
      [4 * H, "Sell"],
      [8 * H, "Buy"], // late's entry, inside the last bar; its exit is past it
    ]);
  });
});

describe("formatDuration", () => {
  it("picks the unit that reads best", () => {
    expect(formatDuration(42.4)).toBe("42 s");
    expect(formatDuration(17 * 60 + 5)).toBe("17 min");
    expect(formatDuration(5 * 3600 + 3 * 60)).toBe("5 h 3 min");
    expect(formatDuration(2119 * 86_400 + 4 * 3600)).toBe("2,119 d 4 h");
    expect(formatDuration(-1)).toBe("0 s");
  });
});
