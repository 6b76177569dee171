/**
 * Which connections the editor lets the author draw: the engine's rules
 * (docs/strategy-graphs.md, "The graph format") checked while dragging, with the reason when
 * one is refused. The validator stays the judge of the saved graph; these keep the obvious
 * mistakes from being drawn at all.
 */
import type { Catalog, PortType } from "./catalog";

export interface ConnectionAttempt {
  source: string | null;
  sourceHandle?: string | null;
  target: string | null;
  targetHandle?: string | null;
}

export interface NodeRef {
  id: string;
  nodeType: string;
}

export interface EdgeRef {
  source: string;
  sourceHandle?: string | null;
  target: string;
  targetHandle?: string | null;
}

export type Verdict = { ok: true; type: PortType } | { ok: false; reason: string };

/** Whether an output of type `from` may feed an input of type `to`: only the same type. */
export function compatible(from: PortType, to: PortType): boolean {
  return from === to;
}

export function checkConnection(
  attempt: ConnectionAttempt,
  nodes: ReadonlyMap<string, NodeRef>,
  edges: readonly EdgeRef[],
  catalog: Catalog,
): Verdict {
  const { source, target } = attempt;
  const sourcePort = attempt.sourceHandle ?? null;
  const targetPort = attempt.targetHandle ?? null;
  if (source === null || target === null || sourcePort === null || targetPort === null) {
    return { ok: false, reason: "connect an output port to an input port" };
  }
  if (source === target) return { ok: false, reason: "a node cannot feed itself" };
  const from = nodes.get(source);
  const to = nodes.get(target);
  if (from === undefined || to === undefined) return { ok: false, reason: "no such node" };
  const fromSpec = catalog.get(from.nodeType);
  const toSpec = catalog.get(to.nodeType);
  if (fromSpec === undefined) return { ok: false, reason: `'${from.nodeType}' is not a known node type` };
  if (toSpec === undefined) return { ok: false, reason: `'${to.nodeType}' is not a known node type` };
  if (fromSpec.sink) {
    return { ok: false, reason: `${from.nodeType} is a ${fromSpec.category} node: its output ends the graph` };
  }
  const output = catalog.output(from.nodeType, sourcePort);
  if (output === undefined) return { ok: false, reason: `${from.nodeType} has no output '${sourcePort}'` };
  const input = catalog.input(to.nodeType, targetPort);
  if (input === undefined) return { ok: false, reason: `${to.nodeType} has no input '${targetPort}'` };
  if (!compatible(output.type, input.type)) {
    return {
      ok: false,
      reason: `${source}.${sourcePort} is a ${output.type} series; ${target}.${targetPort} takes a ${input.type} series`,
    };
  }
  if (edges.some((e) => e.target === target && (e.targetHandle ?? null) === targetPort)) {
    return { ok: false, reason: `${target}.${targetPort} is already connected (an input takes one edge)` };
  }
  if (reaches(target, source, edges)) {
    return { ok: false, reason: `this edge would make a cycle through ${target}` };
  }
  return { ok: true, type: output.type };
}

/** Whether `to` can be reached from `from` along `edges`. */
function reaches(from: string, to: string, edges: readonly EdgeRef[]): boolean {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  const seen = new Set<string>([from]);
  const stack = [from];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (id === to) return true;
    for (const n of next.get(id) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        stack.push(n);
      }
    }
  }
  return false;
}
