/**
 * A layered (Sugiyama-style) layout for graphs that carry no positions: each node in the
 * column of its longest path from a source, columns ordered by the mean row of each node's
 * predecessors, so edges run left to right with few crossings. Cycles (a draft's graph may have
 * one) do not stop it: their nodes go to the columns after the rest.
 */
import type { Position } from "./graph";

export const COLUMN_WIDTH = 260;
export const ROW_HEIGHT = 140;

export function layeredLayout(ids: string[], edges: [string, string][]): Map<string, Position> {
  const known = new Set(ids);
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  const succs = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [from, to] of edges) {
    if (!known.has(from) || !known.has(to) || from === to) continue;
    preds.get(to)!.push(from);
    succs.get(from)!.push(to);
  }
  // Longest path from a source (Kahn's order).
  const layer = new Map<string, number>();
  const indegree = new Map(ids.map((id) => [id, preds.get(id)!.length]));
  const queue = ids.filter((id) => indegree.get(id) === 0);
  for (const id of queue) layer.set(id, 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i]!;
    for (const next of succs.get(id)!) {
      layer.set(next, Math.max(layer.get(next) ?? 0, layer.get(id)! + 1));
      indegree.set(next, indegree.get(next)! - 1);
      if (indegree.get(next) === 0) queue.push(next);
    }
  }
  let last = Math.max(-1, ...layer.values());
  for (const id of ids) {
    if (!queue.includes(id)) layer.set(id, ++last); // on a cycle
  }
  const columns: string[][] = [];
  for (const id of ids) {
    const l = layer.get(id)!;
    (columns[l] ??= []).push(id);
  }
  const row = new Map<string, number>();
  const positions = new Map<string, Position>();
  columns.forEach((column, l) => {
    const barycenter = (id: string) => {
      const rows = preds.get(id)!.map((p) => row.get(p)).filter((r): r is number => r !== undefined);
      return rows.length === 0 ? Number.POSITIVE_INFINITY : rows.reduce((a, b) => a + b, 0) / rows.length;
    };
    const ordered = column
      .map((id, i) => ({ id, i, key: barycenter(id) }))
      .sort((a, b) => (a.key === b.key ? a.i - b.i : a.key < b.key ? -1 : 1));
    ordered.forEach(({ id }, r) => {
      row.set(id, r);
      positions.set(id, { x: l * COLUMN_WIDTH, y: r * ROW_HEIGHT });
    });
  });
  return positions;
}
