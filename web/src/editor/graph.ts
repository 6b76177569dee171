/**
 * The strategy graph of the API (docs/strategy-graphs.md) and its React Flow form.
 *
 * A graph's `meta.positions` ({node id: {x, y}}) holds where the editor draws each node (the
 * Beta1 migration writes it too); nodes without a position are placed by `layeredLayout`.
 * Everything the editor does not show (`parameters`, the rest of `meta`, params it does not
 * know) is carried through unchanged, so that opening and saving a graph loses nothing.
 */
import type { Edge, Node } from "@xyflow/react";
import { layeredLayout } from "./layout";

export type ParamRef = { $param: string };
export type ParamValue = number | string | ParamRef;

export interface GraphNode {
  id: string;
  type: string;
  params?: Record<string, ParamValue>;
}

export interface GraphEdge {
  from: string;
  to: string;
}

export interface Tunable {
  default: number;
  min: number;
  max: number;
  step?: number;
  doc?: string;
}

export interface StrategyGraph {
  nodes: GraphNode[];
  edges?: GraphEdge[];
  parameters?: Record<string, Tunable>;
  meta?: Record<string, unknown>;
}

export interface Position {
  x: number;
  y: number;
}

export type StrategyNodeData = {
  nodeType: string;
  params: Record<string, ParamValue>;
};
export type FlowNode = Node<StrategyNodeData, "strategy">;
export type FlowEdge = Edge;

/** What the flow does not show but the graph keeps. */
export interface GraphExtras {
  parameters?: Record<string, Tunable>;
  meta: Record<string, unknown>;
}

export interface FlowGraph {
  nodes: FlowNode[];
  edges: FlowEdge[];
  extras: GraphExtras;
  /** Edges that could not be drawn (a missing node, no "node.port"): named, never silent. */
  dropped: GraphEdge[];
}

export const NODE_ID = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function isParamRef(value: unknown): value is ParamRef {
  return (
    typeof value === "object" && value !== null && typeof (value as ParamRef).$param === "string"
  );
}

export function splitRef(ref: string): [string, string] | null {
  const dot = ref.indexOf(".");
  if (dot <= 0 || dot === ref.length - 1) return null;
  return [ref.slice(0, dot), ref.slice(dot + 1)];
}

export function edgeId(from: string, to: string): string {
  return `${from}->${to}`;
}

export function flowEdge(source: string, sourceHandle: string, target: string, targetHandle: string): FlowEdge {
  return {
    id: edgeId(`${source}.${sourceHandle}`, `${target}.${targetHandle}`),
    source,
    sourceHandle,
    target,
    targetHandle,
  };
}

function readPositions(meta: Record<string, unknown>): Map<string, Position> {
  const positions = new Map<string, Position>();
  const raw = meta.positions;
  if (typeof raw !== "object" || raw === null) return positions;
  for (const [id, p] of Object.entries(raw as Record<string, unknown>)) {
    const pos = p as Partial<Position> | null;
    if (pos && Number.isFinite(pos.x) && Number.isFinite(pos.y)) {
      positions.set(id, { x: pos.x as number, y: pos.y as number });
    }
  }
  return positions;
}

export function graphToFlow(graph: StrategyGraph): FlowGraph {
  const meta = { ...(graph.meta ?? {}) };
  const ids = new Set(graph.nodes.map((n) => n.id));
  const edges: FlowEdge[] = [];
  const dropped: GraphEdge[] = [];
  for (const edge of graph.edges ?? []) {
    const from = splitRef(edge.from);
    const to = splitRef(edge.to);
    if (from === null || to === null || !ids.has(from[0]) || !ids.has(to[0])) {
      dropped.push(edge);
      continue;
    }
    edges.push(flowEdge(from[0], from[1], to[0], to[1]));
  }
  const stored = readPositions(meta);
  const missing = graph.nodes.some((n) => !stored.has(n.id));
  const laidOut = missing
    ? layeredLayout(
        graph.nodes.map((n) => n.id),
        edges.map((e) => [e.source, e.target] as [string, string]),
      )
    : new Map<string, Position>();
  // Nodes placed by the layout go below those the author placed, never on top of them.
  const offsetY = stored.size > 0 ? Math.max(...[...stored.values()].map((p) => p.y)) + 160 : 0;
  const nodes: FlowNode[] = graph.nodes.map((n) => ({
    id: n.id,
    type: "strategy",
    position: stored.get(n.id) ?? shift(laidOut.get(n.id) ?? { x: 0, y: 0 }, offsetY),
    data: { nodeType: n.type, params: { ...(n.params ?? {}) } },
  }));
  const extras: GraphExtras = { meta };
  if (graph.parameters !== undefined) extras.parameters = graph.parameters;
  return { nodes, edges, extras, dropped };
}

function shift(p: Position, dy: number): Position {
  return { x: p.x, y: p.y + dy };
}

export function flowToGraph(nodes: FlowNode[], edges: FlowEdge[], extras: GraphExtras): StrategyGraph {
  const positions: Record<string, Position> = {};
  for (const n of nodes) {
    positions[n.id] = { x: Math.round(n.position.x), y: Math.round(n.position.y) };
  }
  const graph: StrategyGraph = {
    nodes: nodes.map((n) => {
      const node: GraphNode = { id: n.id, type: n.data.nodeType };
      if (Object.keys(n.data.params).length > 0) node.params = { ...n.data.params };
      return node;
    }),
    edges: edges.map((e) => ({
      from: `${e.source}.${e.sourceHandle ?? "out"}`,
      to: `${e.target}.${e.targetHandle ?? "in"}`,
    })),
  };
  if (extras.parameters !== undefined) graph.parameters = extras.parameters;
  graph.meta = { ...extras.meta, positions };
  return graph;
}

/** The graph without what does not change its meaning (positions), for validation keys. */
export function semanticGraph(graph: StrategyGraph): StrategyGraph {
  const { positions: _positions, ...meta } = graph.meta ?? {};
  return { ...graph, meta };
}

/** A fresh node id for `type`: `sma`, then `sma_2`, `sma_3`... not among `taken`. */
export function freshNodeId(base: string, taken: ReadonlySet<string>): string {
  let stem = base.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 56) || "node";
  if (!/^[A-Za-z_]/.test(stem)) stem = `n_${stem}`;
  if (!taken.has(stem)) return stem;
  for (let i = 2; ; i++) {
    const candidate = `${stem}_${i}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** Why `id` cannot name a node among `taken` (null when it can). */
export function nodeIdProblem(id: string, taken: ReadonlySet<string>): string | null {
  if (!NODE_ID.test(id)) return "letters, digits and _, not starting with a digit (at most 64)";
  if (taken.has(id)) return `another node is called '${id}'`;
  return null;
}

/** The nodes and edges with node `from` called `to` (edges and their ids follow). */
export function renameNodeId(
  nodes: readonly FlowNode[],
  edges: readonly FlowEdge[],
  from: string,
  to: string,
): { nodes: FlowNode[]; edges: FlowEdge[] } {
  const name = (id: string) => (id === from ? to : id);
  return {
    nodes: nodes.map((n) => (n.id === from ? { ...n, id: to } : n)),
    edges: edges.map((e) =>
      e.source === from || e.target === from
        ? { ...flowEdge(name(e.source), e.sourceHandle ?? "out", name(e.target), e.targetHandle ?? "in"), selected: e.selected }
        : e,
    ),
  };
}
