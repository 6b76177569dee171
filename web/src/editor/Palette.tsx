/** The node types, grouped by category: drag one onto the canvas, or click it to add it. */
import { useState, type DragEvent } from "react";
import { CATEGORY_LABELS, type Catalog } from "./catalog";

export const DRAG_TYPE = "application/x-algotrade-node-type";

export function Palette({ catalog, onAdd }: { catalog: Catalog; onAdd: (type: string) => void }) {
  const [filter, setFilter] = useState("");
  const needle = filter.trim().toLowerCase();
  const onDragStart = (e: DragEvent, type: string) => {
    e.dataTransfer.setData(DRAG_TYPE, type);
    e.dataTransfer.effectAllowed = "move";
  };
  return (
    <aside className="palette">
      <input
        type="search"
        placeholder="Find a node…"
        value={filter}
        onChange={(e) => setFilter(e.target.value)}
        aria-label="Find a node type"
      />
      {catalog.byCategory().map(([category, specs]) => {
        const shown = specs.filter(
          (s) => needle === "" || s.type.includes(needle) || s.doc.toLowerCase().includes(needle),
        );
        if (shown.length === 0) return null;
        return (
          <details key={category} open={needle !== "" || ["source", "indicator", "compare", "signal"].includes(category)}>
            <summary>
              {CATEGORY_LABELS[category] ?? category} <small>{shown.length}</small>
            </summary>
            <ul>
              {shown.map((spec) => (
                <li
                  key={spec.type}
                  className={`palette-item category-${category}`}
                  draggable
                  onDragStart={(e) => onDragStart(e, spec.type)}
                  onClick={() => onAdd(spec.type)}
                  title={`${spec.doc}\nwarm-up: ${spec.warmup}`}
                >
                  {spec.type}
                </li>
              ))}
            </ul>
          </details>
        );
      })}
    </aside>
  );
}
