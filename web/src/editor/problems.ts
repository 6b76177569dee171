/**
 * Problems of a graph (the validator's, or a Beta1 draft's) placed where the author sees them:
 * on their node, on their port, or in the list when they name neither.
 */
export interface GraphProblem {
  code: string;
  message: string;
  node_id?: string | null;
  /** Drafts written before `node_id` was settled may name the node `node`. */
  node?: string | null;
  port?: string | null;
}

export interface PlacedProblems {
  byNode: Map<string, GraphProblem[]>;
  byPort: Map<string, GraphProblem[]>;
  /** Problems whose node is not on the canvas, or that name no node. */
  unplaced: GraphProblem[];
}

export function problemNode(p: GraphProblem): string | null {
  return p.node_id ?? p.node ?? null;
}

export function placeProblems(problems: readonly GraphProblem[], nodeIds: ReadonlySet<string>): PlacedProblems {
  const placed: PlacedProblems = { byNode: new Map(), byPort: new Map(), unplaced: [] };
  for (const p of problems) {
    const node = problemNode(p);
    if (node === null || !nodeIds.has(node)) {
      placed.unplaced.push(p);
      continue;
    }
    placed.byNode.set(node, [...(placed.byNode.get(node) ?? []), p]);
    if (p.port) {
      const key = `${node}.${p.port}`;
      placed.byPort.set(key, [...(placed.byPort.get(key) ?? []), p]);
    }
  }
  return placed;
}

/** A draft's stored problems, whatever their shape (they are free-form JSON in the API). */
export function parseStoredProblems(raw: unknown): GraphProblem[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((p): p is Record<string, unknown> => typeof p === "object" && p !== null)
    .map((p) => ({
      code: typeof p.code === "string" ? p.code : "problem",
      message: typeof p.message === "string" ? p.message : JSON.stringify(p),
      node_id: typeof p.node_id === "string" ? p.node_id : typeof p.node === "string" ? p.node : null,
      port: typeof p.port === "string" ? p.port : null,
    }));
}
