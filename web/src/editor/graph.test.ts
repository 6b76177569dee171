import { describe, expect, it } from "vitest";
import {
  flowToGraph,
  freshNodeId,
  graphToFlow,
  NODE_ID,
  nodeIdProblem,
  renameNodeId,
  semanticGraph,
  type StrategyGraph,
} from "./graph";

const emaCross: StrategyGraph = {
  nodes: [
    { id: "close", type: "price", params: { field: "close" } },
    { id: "fast", type: "ema", params: { period: { $param: "fast" } } },
    { id: "slow", type: "ema", params: { period: 26 } },
    { id: "golden", type: "cross_above" },
    { id: "buy", type: "enter_long" },
  ],
  edges: [
    { from: "close.out", to: "fast.in" },
    { from: "close.out", to: "slow.in" },
    { from: "fast.out", to: "golden.a" },
    { from: "slow.out", to: "golden.b" },
    { from: "golden.out", to: "buy.in" },
  ],
  parameters: { fast: { default: 12, min: 2, max: 50, step: 1, doc: "fast EMA period" } },
  meta: {
    name: "EMA crossover",
    beta1: { strategy_id: 7 },
    positions: {
      close: { x: 0, y: 0 },
      fast: { x: 250, y: -60 },
      slow: { x: 250, y: 60 },
      golden: { x: 500, y: 0 },
      buy: { x: 750, y: 0 },
    },
  },
};

describe("graph to flow", () => {
  it("reads node positions from meta.positions", () => {
    const flow = graphToFlow(emaCross);
    expect(flow.nodes.map((n) => [n.id, n.position])).toEqual([
      ["close", { x: 0, y: 0 }],
      ["fast", { x: 250, y: -60 }],
      ["slow", { x: 250, y: 60 }],
      ["golden", { x: 500, y: 0 }],
      ["buy", { x: 750, y: 0 }],
    ]);
  });

  it("turns 'node.port' edge ends into handles", () => {
    const flow = graphToFlow(emaCross);
    expect(flow.edges[2]).toMatchObject({
      id: "fast.out->golden.a",
      source: "fast",
      sourceHandle: "out",
      target: "golden",
      targetHandle: "a",
    });
  });

  it("keeps params, $param references and node types on the node", () => {
    const fast = graphToFlow(emaCross).nodes[1]!;
    expect(fast.type).toBe("strategy");
    expect(fast.data).toEqual({ nodeType: "ema", params: { period: { $param: "fast" } } });
  });

  it("lays out a graph without positions, sources left and each edge going right", () => {
    const { meta: _meta, ...bare } = emaCross;
    const flow = graphToFlow(bare);
    const x = new Map(flow.nodes.map((n) => [n.id, n.position.x]));
    for (const e of flow.edges) expect(x.get(e.source)!).toBeLessThan(x.get(e.target)!);
    const spots = new Set(flow.nodes.map((n) => `${n.position.x},${n.position.y}`));
    expect(spots.size).toBe(flow.nodes.length); // no two nodes on one spot
  });

  it("places nodes missing from meta.positions below the placed ones", () => {
    const graph: StrategyGraph = {
      ...emaCross,
      nodes: [...emaCross.nodes, { id: "sell", type: "exit_long" }],
    };
    const sell = graphToFlow(graph).nodes.find((n) => n.id === "sell")!;
    expect(sell.position.y).toBeGreaterThan(60);
  });

  it("names the edges it cannot draw instead of dropping them silently", () => {
    const graph: StrategyGraph = {
      nodes: [{ id: "a", type: "price" }],
      edges: [
        { from: "a.out", to: "gone.in" },
        { from: "nodot", to: "a.in" },
      ],
    };
    const flow = graphToFlow(graph);
    expect(flow.edges).toEqual([]);
    expect(flow.dropped).toEqual(graph.edges);
  });
});

describe("flow to graph", () => {
  it("round-trips a graph: nodes, edges, parameters and meta unchanged", () => {
    const flow = graphToFlow(emaCross);
    expect(flowToGraph(flow.nodes, flow.edges, flow.extras)).toEqual(emaCross);
  });

  it("writes where the author moved nodes to meta.positions, rounded", () => {
    const flow = graphToFlow(emaCross);
    flow.nodes[0]!.position = { x: 10.4, y: -20.6 };
    const graph = flowToGraph(flow.nodes, flow.edges, flow.extras);
    expect((graph.meta!.positions as Record<string, unknown>).close).toEqual({ x: 10, y: -21 });
  });

  it("writes positions for a graph that had none, so the next opening keeps the layout", () => {
    const { meta: _meta, ...bare } = emaCross;
    const flow = graphToFlow(bare);
    const graph = flowToGraph(flow.nodes, flow.edges, flow.extras);
    expect(Object.keys(graph.meta!.positions as object).sort()).toEqual(
      ["buy", "close", "fast", "golden", "slow"],
    );
    expect(graphToFlow(graph).nodes.map((n) => n.position)).toEqual(flow.nodes.map((n) => n.position));
  });

  it("leaves params out for nodes without any", () => {
    const flow = graphToFlow(emaCross);
    const graph = flowToGraph(flow.nodes, flow.edges, flow.extras);
    expect(graph.nodes[3]).toEqual({ id: "golden", type: "cross_above" });
  });

  it("validates the same graph wherever its nodes are drawn", () => {
    const moved = graphToFlow(emaCross);
    moved.nodes[0]!.position = { x: 999, y: 999 };
    const a = semanticGraph(flowToGraph(moved.nodes, moved.edges, moved.extras));
    expect(a).toEqual(semanticGraph(emaCross));
    expect(a.meta).toEqual({ name: "EMA crossover", beta1: { strategy_id: 7 } });
  });
});

describe("node ids", () => {
  it("are fresh, valid ids derived from the type", () => {
    expect(freshNodeId("sma", new Set())).toBe("sma");
    expect(freshNodeId("sma", new Set(["sma", "sma_2"]))).toBe("sma_3");
    expect(freshNodeId("3d-thing", new Set())).toBe("n_3d_thing");
    for (const id of ["sma", "sma_3", "n_3d_thing"]) expect(NODE_ID.test(id)).toBe(true);
  });
});

describe("renaming a node", () => {
  it("renames its edges and keeps everything else", () => {
    const flow = graphToFlow(emaCross);
    const renamed = renameNodeId(flow.nodes, flow.edges, "fast", "quick");
    expect(renamed.nodes.map((n) => n.id)).toEqual(["close", "quick", "slow", "golden", "buy"]);
    const graph = flowToGraph(renamed.nodes, renamed.edges, flow.extras);
    expect(graph.edges).toEqual([
      { from: "close.out", to: "quick.in" },
      { from: "close.out", to: "slow.in" },
      { from: "quick.out", to: "golden.a" },
      { from: "slow.out", to: "golden.b" },
      { from: "golden.out", to: "buy.in" },
    ]);
    expect(renamed.edges[0]!.id).toBe("close.out->quick.in");
    expect((graph.meta!.positions as Record<string, unknown>).quick).toEqual({ x: 250, y: -60 });
  });

  it("refuses ids the engine would refuse and ids already taken", () => {
    const taken = new Set(["close", "fast"]);
    expect(nodeIdProblem("fast_ma", taken)).toBeNull();
    expect(nodeIdProblem("fast", taken)).toContain("another node");
    expect(nodeIdProblem("9lives", taken)).not.toBeNull();
    expect(nodeIdProblem("has space", taken)).not.toBeNull();
  });
});
