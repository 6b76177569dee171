import { describe, expect, it } from "vitest";
import { checkConnection, compatible, type EdgeRef, type NodeRef } from "./ports";
import { catalog } from "./testdata/catalog";

const nodes = new Map<string, NodeRef>(
  [
    ["close", "price"],
    ["fast", "sma"],
    ["slow", "sma"],
    ["golden", "cross_above"],
    ["trend", "gt"],
    ["both", "and"],
    ["buy", "enter_long"],
    ["sell", "exit_long"],
    ["stop", "stop_loss"],
    ["odd", "beta1_thing"],
  ].map(([id, nodeType]) => [id!, { id: id!, nodeType: nodeType! }]),
);

const edges: EdgeRef[] = [
  { source: "close", sourceHandle: "out", target: "fast", targetHandle: "in" },
  { source: "fast", sourceHandle: "out", target: "golden", targetHandle: "a" },
];

const attempt = (source: string, sourceHandle: string, target: string, targetHandle: string) =>
  checkConnection({ source, sourceHandle, target, targetHandle }, nodes, edges, catalog);

describe("port compatibility", () => {
  it("joins only ports of the same series type", () => {
    expect(compatible("float", "float")).toBe(true);
    expect(compatible("bool", "bool")).toBe(true);
    expect(compatible("float", "bool")).toBe(false);
    expect(compatible("bool", "float")).toBe(false);
  });

  it("accepts a float output into a float input", () => {
    expect(attempt("close", "out", "slow", "in")).toEqual({ ok: true, type: "float" });
  });

  it("accepts a bool output into a bool input", () => {
    expect(attempt("golden", "out", "buy", "in")).toEqual({ ok: true, type: "bool" });
    expect(attempt("golden", "out", "both", "a")).toEqual({ ok: true, type: "bool" });
  });

  it("refuses a float series into a bool input, and the reverse, saying why", () => {
    const floatToBool = attempt("fast", "out", "buy", "in");
    expect(floatToBool).toEqual({
      ok: false,
      reason: "fast.out is a float series; buy.in takes a bool series",
    });
    const boolToFloat = attempt("golden", "out", "trend", "a");
    expect(boolToFloat.ok).toBe(false);
  });

  it("refuses an input that already has its edge", () => {
    const verdict = attempt("slow", "out", "fast", "in");
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reason).toContain("already connected");
  });

  it("refuses edges leaving a sink (signal or risk node)", () => {
    expect(attempt("buy", "signal", "both", "a").ok).toBe(false);
    expect(attempt("stop", "distance", "slow", "in").ok).toBe(false);
  });

  it("refuses ports the node type does not have", () => {
    expect(attempt("close", "nope", "slow", "in").ok).toBe(false);
    expect(attempt("close", "out", "slow", "nope").ok).toBe(false);
  });

  it("refuses a node feeding itself and an edge closing a cycle", () => {
    expect(attempt("slow", "out", "slow", "in").ok).toBe(false);
    const cycle = attempt("golden", "out", "close", "in"); // close has no input anyway
    expect(cycle.ok).toBe(false);
    const loop = checkConnection(
      { source: "slow", sourceHandle: "out", target: "close", targetHandle: "x" },
      nodes,
      [...edges, { source: "close", sourceHandle: "out", target: "slow", targetHandle: "in" }],
      catalog,
    );
    expect(loop.ok).toBe(false);
  });

  it("detects a cycle through several nodes", () => {
    const chain = new Map<string, NodeRef>([
      ["a", { id: "a", nodeType: "sma" }],
      ["b", { id: "b", nodeType: "ema" }],
      ["c", { id: "c", nodeType: "add" }],
    ]);
    const wired: EdgeRef[] = [
      { source: "a", sourceHandle: "out", target: "b", targetHandle: "in" },
      { source: "b", sourceHandle: "out", target: "c", targetHandle: "a" },
    ];
    const verdict = checkConnection(
      { source: "c", sourceHandle: "out", target: "a", targetHandle: "in" },
      chain,
      wired,
      catalog,
    );
    expect(verdict).toEqual({ ok: false, reason: "this edge would make a cycle through a" });
  });

  it("refuses to wire a node of a type the catalog does not know (a Beta1 leftover)", () => {
    expect(attempt("odd", "out", "slow", "in").ok).toBe(false);
    expect(attempt("close", "out", "odd", "in").ok).toBe(false);
  });

  it("refuses a half-made connection", () => {
    const verdict = checkConnection({ source: "close", sourceHandle: null, target: "slow", targetHandle: "in" }, nodes, edges, catalog);
    expect(verdict.ok).toBe(false);
  });

  it("types every port of every catalog node as float or bool", () => {
    for (const spec of catalog.types.values()) {
      for (const port of [...spec.inputs, ...spec.outputs]) {
        expect(["float", "bool"]).toContain(port.type);
      }
    }
  });
});
