/**
 * The node-type catalog of `GET /api/strategies/node-types`: every type's ports with their
 * types, params with ranges and docs. The OpenAPI document types its entries as free-form
 * objects, so this module states their shape (as `algotrade.engine.registry` builds them) and
 * checks it once when the catalog arrives.
 */
export type PortType = "float" | "bool";

export interface InputSpec {
  name: string;
  type: PortType;
  required: boolean;
  /** The bar field an unwired optional input reads ("high"), or null. */
  default_source: string | null;
  doc: string;
}

export interface OutputSpec {
  name: string;
  type: PortType;
  doc: string;
}

export interface ParamSpec {
  name: string;
  type: "int" | "float" | "choice";
  doc: string;
  required: boolean;
  default: number | string | null;
  min?: number;
  max?: number;
  choices?: string[];
}

export interface NodeTypeSpec {
  type: string;
  category: string;
  doc: string;
  inputs: InputSpec[];
  outputs: OutputSpec[];
  params: ParamSpec[];
  warmup: string;
  /** Signal and risk nodes: their outputs cannot feed other nodes. */
  sink: boolean;
}

/** Palette order: how a strategy reads, from data to decisions. */
export const CATEGORY_ORDER = ["source", "indicator", "math", "compare", "logic", "signal", "risk"];

export const CATEGORY_LABELS: Record<string, string> = {
  source: "Sources",
  indicator: "Indicators",
  math: "Math",
  compare: "Comparisons",
  logic: "Logic",
  signal: "Signals",
  risk: "Risk",
};

export class Catalog {
  readonly types: ReadonlyMap<string, NodeTypeSpec>;

  constructor(specs: NodeTypeSpec[]) {
    this.types = new Map(specs.map((s) => [s.type, s]));
  }

  get(type: string): NodeTypeSpec | undefined {
    return this.types.get(type);
  }

  input(type: string, port: string): InputSpec | undefined {
    return this.get(type)?.inputs.find((p) => p.name === port);
  }

  output(type: string, port: string): OutputSpec | undefined {
    return this.get(type)?.outputs.find((p) => p.name === port);
  }

  /** Categories in palette order (unknown ones last, alphabetically), types by name. */
  byCategory(): [string, NodeTypeSpec[]][] {
    const groups = new Map<string, NodeTypeSpec[]>();
    for (const spec of this.types.values()) {
      const group = groups.get(spec.category) ?? [];
      group.push(spec);
      groups.set(spec.category, group);
    }
    const rank = (c: string) => {
      const i = CATEGORY_ORDER.indexOf(c);
      return i === -1 ? CATEGORY_ORDER.length : i;
    };
    return [...groups.entries()]
      .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
      .map(([c, specs]) => [c, specs.sort((x, y) => x.type.localeCompare(y.type))]);
  }

  /** The params a new node of `type` starts with: every param that has a default. */
  defaultParams(type: string): Record<string, number | string> {
    const params: Record<string, number | string> = {};
    for (const p of this.get(type)?.params ?? []) {
      if (p.default !== null) params[p.name] = p.default;
    }
    return params;
  }
}

function isPortType(v: unknown): v is PortType {
  return v === "float" || v === "bool";
}

/** The catalog's entries, refusing a shape this editor does not understand. */
export function parseCatalog(data: unknown): Catalog {
  if (!Array.isArray(data)) throw new Error("the node-type catalog is not a list");
  const specs = data.map((raw, i): NodeTypeSpec => {
    const r = raw as Partial<NodeTypeSpec>;
    const ok =
      typeof r.type === "string" &&
      typeof r.category === "string" &&
      Array.isArray(r.inputs) &&
      Array.isArray(r.outputs) &&
      Array.isArray(r.params) &&
      [...r.inputs, ...r.outputs].every((p) => typeof p.name === "string" && isPortType(p.type));
    if (!ok) throw new Error(`node type #${i} of the catalog has an unexpected shape`);
    return {
      doc: "",
      warmup: "",
      sink: false,
      ...r,
    } as NodeTypeSpec;
  });
  return new Catalog(specs);
}
