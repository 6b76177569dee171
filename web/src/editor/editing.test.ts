import { describe, expect, it } from "vitest";
import { copySelection, pasteClip, PASTE_OFFSET } from "./clipboard";
import { graphToFlow } from "./graph";
import { History } from "./history";
import { layeredLayout } from "./layout";
import { readParam } from "./params";
import { parseStoredProblems, placeProblems } from "./problems";
import { catalog } from "./testdata/catalog";
import { tunableNameProblem } from "./TunablesPanel";

describe("undo and redo", () => {
  it("walks back and forth through recorded states", () => {
    const history = new History<number>();
    history.record(1);
    history.record(2);
    expect(history.undo(3)).toBe(2);
    expect(history.undo(2)).toBe(1);
    expect(history.undo(1)).toBeUndefined();
    expect(history.redo(1)).toBe(2);
    expect(history.redo(2)).toBe(3);
    expect(history.canRedo).toBe(false);
  });

  it("forgets the undone future when a new change is made", () => {
    const history = new History<string>();
    history.record("a");
    history.undo("b");
    history.record("a");
    expect(history.canRedo).toBe(false);
  });

  it("keeps at most its limit", () => {
    const history = new History<number>(2);
    [1, 2, 3].forEach((n) => history.record(n));
    expect(history.undo(4)).toBe(3);
    expect(history.undo(3)).toBe(2);
    expect(history.undo(2)).toBeUndefined();
  });
});

describe("copy and paste", () => {
  const flow = graphToFlow({
    nodes: [
      { id: "close", type: "price" },
      { id: "sma", type: "sma", params: { period: 20 } },
      { id: "rsi", type: "rsi" },
    ],
    edges: [
      { from: "close.out", to: "sma.in" },
      { from: "close.out", to: "rsi.in" },
    ],
  });

  it("copies the selected nodes and only the edges among them", () => {
    const nodes = flow.nodes.map((n) => ({ ...n, selected: n.id !== "rsi" }));
    const clip = copySelection(nodes, flow.edges)!;
    expect(clip.nodes.map((n) => n.id)).toEqual(["close", "sma"]);
    expect(clip.edges.map((e) => e.id)).toEqual(["close.out->sma.in"]);
    expect(copySelection(flow.nodes, flow.edges)).toBeNull();
  });

  it("pastes with fresh ids, edges renamed to match, shifted and selected", () => {
    const nodes = flow.nodes.map((n) => ({ ...n, selected: n.id !== "rsi" }));
    const pasted = pasteClip(copySelection(nodes, flow.edges)!, flow.nodes);
    expect(pasted.nodes.map((n) => n.id)).toEqual(["close_2", "sma_2"]);
    expect(pasted.edges).toEqual([
      { id: "close_2.out->sma_2.in", source: "close_2", sourceHandle: "out", target: "sma_2", targetHandle: "in" },
    ]);
    expect(pasted.nodes[1]!.position.x).toBe(flow.nodes[1]!.position.x + PASTE_OFFSET);
    expect(pasted.nodes[1]!.data.params).toEqual({ period: 20 });
    expect(pasted.nodes.every((n) => n.selected)).toBe(true);
  });

  it("pastes copies that do not share params with the originals", () => {
    const nodes = flow.nodes.map((n) => ({ ...n, selected: n.id === "sma" }));
    const pasted = pasteClip(copySelection(nodes, flow.edges)!, flow.nodes);
    pasted.nodes[0]!.data.params.period = 50;
    expect(flow.nodes[1]!.data.params.period).toBe(20);
  });
});

describe("layered layout", () => {
  it("survives a cycle (a Beta1 draft may have one)", () => {
    const positions = layeredLayout(["a", "b", "c"], [["a", "b"], ["b", "c"], ["c", "b"]]);
    expect(positions.size).toBe(3);
    expect(positions.get("a")!.x).toBe(0);
  });
});

describe("problems on the canvas", () => {
  it("go to their node and port, or to the list when they name neither", () => {
    const placed = placeProblems(
      [
        { node_id: "buy", port: "in", code: "missing_input", message: "Node 'buy' input 'in' is not connected." },
        { node_id: "fast", port: null, code: "param_out_of_range", message: "period is 1" },
        { node_id: "gone", port: null, code: "dangling_edge", message: "no node gone" },
        { node_id: null, port: null, code: "no_entry_signal", message: "no entry" },
      ],
      new Set(["buy", "fast"]),
    );
    expect(placed.byNode.get("buy")!.map((p) => p.code)).toEqual(["missing_input"]);
    expect(placed.byPort.get("buy.in")!.map((p) => p.code)).toEqual(["missing_input"]);
    expect(placed.byNode.get("fast")!.map((p) => p.code)).toEqual(["param_out_of_range"]);
    expect(placed.unplaced.map((p) => p.code)).toEqual(["dangling_edge", "no_entry_signal"]);
  });

  it("reads a migrated draft's stored problems, whichever key names the node", () => {
    const problems = parseStoredProblems([
      { node_id: "n_1", port: "x", code: "beta1_unknown_port", message: "no port x" },
      { node: "n_2", code: "beta1_unknown_node_type", message: "replace it" },
      "garbage",
    ]);
    expect(problems).toEqual([
      { node_id: "n_1", port: "x", code: "beta1_unknown_port", message: "no port x" },
      { node_id: "n_2", port: null, code: "beta1_unknown_node_type", message: "replace it" },
    ]);
  });
});

describe("params from the side panel", () => {
  const sma = catalog.get("sma")!.params.find((p) => p.name === "period")!;
  const constant = catalog.get("constant")!.params.find((p) => p.name === "value")!;
  const field = catalog.get("price")!.params.find((p) => p.name === "field")!;

  it("accept values inside the type's range", () => {
    expect(readParam(sma, "50")).toEqual({ ok: true, value: 50 });
    expect(readParam(field, "hl2")).toEqual({ ok: true, value: "hl2" });
  });

  it("refuse values outside it, fractions for ints and unknown choices", () => {
    expect(readParam(sma, "1")).toEqual({ ok: false, error: "between 2 and 5000" });
    expect(readParam(sma, "2.5").ok).toBe(false);
    expect(readParam(sma, "ten").ok).toBe(false);
    expect(readParam(field, "median").ok).toBe(false);
  });

  it("use the default when left empty, unless there is none", () => {
    expect(readParam(sma, "")).toEqual({ ok: true, value: undefined });
    expect(readParam(constant, "").ok).toBe(false);
  });

  it("start new nodes with the type's defaults", () => {
    expect(catalog.defaultParams("sma")).toEqual({ period: 20 });
    expect(catalog.defaultParams("constant")).toEqual({});
  });
});

describe("the palette", () => {
  it("groups the catalog by category, data first and decisions last", () => {
    const categories = catalog.byCategory().map(([c]) => c);
    expect(categories).toEqual(["source", "indicator", "math", "compare", "logic", "signal", "risk"]);
    const signals = catalog.byCategory().find(([c]) => c === "signal")![1].map((s) => s.type);
    expect(signals).toEqual(["enter_long", "enter_short", "exit_long", "exit_short"]);
  });
});

describe("tunable names", () => {
  it("are identifiers, unique in the graph", () => {
    expect(tunableNameProblem("fast", {})).toBeNull();
    expect(tunableNameProblem("fast", { fast: { default: 1, min: 1, max: 2 } })).toContain("already");
    expect(tunableNameProblem("2fast", {})).not.toBeNull();
    expect(tunableNameProblem("fast-ma", {})).not.toBeNull();
  });
});
