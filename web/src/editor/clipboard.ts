/**
 * Copy and paste of nodes: the selected nodes and the edges among them, pasted with fresh ids
 * (edges renamed to match) and shifted so the copy does not hide the original.
 */
import { flowEdge, freshNodeId, type FlowEdge, type FlowNode } from "./graph";

export interface Clip {
  nodes: FlowNode[];
  edges: FlowEdge[];
}

export const PASTE_OFFSET = 40;

export function copySelection(nodes: readonly FlowNode[], edges: readonly FlowEdge[]): Clip | null {
  const selected = nodes.filter((n) => n.selected);
  if (selected.length === 0) return null;
  const ids = new Set(selected.map((n) => n.id));
  return {
    nodes: selected.map((n) => structuredClone({ ...n, selected: false })),
    edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map((e) => ({ ...e })),
  };
}

/** The clip's nodes and edges renamed to fit among `existing`, selected, offset by `times`. */
export function pasteClip(clip: Clip, existing: readonly FlowNode[], times = 1): Clip {
  const taken = new Set(existing.map((n) => n.id));
  const rename = new Map<string, string>();
  for (const n of clip.nodes) {
    const id = freshNodeId(n.id.replace(/_\d+$/, ""), taken);
    taken.add(id);
    rename.set(n.id, id);
  }
  const dx = PASTE_OFFSET * times;
  return {
    nodes: clip.nodes.map((n) => ({
      ...structuredClone(n),
      id: rename.get(n.id)!,
      position: { x: n.position.x + dx, y: n.position.y + dx },
      selected: true,
    })),
    edges: clip.edges.map((e) =>
      flowEdge(rename.get(e.source)!, e.sourceHandle ?? "out", rename.get(e.target)!, e.targetHandle ?? "in"),
    ),
  };
}
