/** The selected node: its doc, its params with ranges and docs, its ports, its problems. */
import { useEffect, useState } from "react";
import type { Catalog, ParamSpec } from "./catalog";
import { isParamRef, nodeIdProblem, type FlowNode, type ParamValue, type Tunable } from "./graph";
import { rangeText, readParam } from "./params";
import type { GraphProblem } from "./problems";

interface Props {
  node: FlowNode;
  catalog: Catalog;
  tunables: Record<string, Tunable>;
  problems: GraphProblem[];
  /** Called before the first change of an editing gesture (for undo). */
  onBeginEdit: () => void;
  onParam: (name: string, value: ParamValue | undefined) => void;
  onRename: (id: string) => void;
  takenIds: ReadonlySet<string>;
}

export function ParamsPanel({ node, catalog, tunables, problems, onBeginEdit, onParam, onRename, takenIds }: Props) {
  const spec = catalog.get(node.data.nodeType);
  return (
    <div className="params-panel">
      <h2>{node.data.nodeType}</h2>
      <NodeIdField key={node.id} id={node.id} takenIds={takenIds} onRename={onRename} />
      {spec === undefined ? (
        <p className="warning">
          The catalog has no node type <code>{node.data.nodeType}</code> (a Beta1 leftover?). Replace it with a node from
          the palette.
        </p>
      ) : (
        <>
          <p className="doc">{spec.doc}</p>
          <p className="muted">warm-up: {spec.warmup}</p>
        </>
      )}
      {problems.length > 0 && (
        <ul className="problems">
          {problems.map((p, i) => (
            <li key={i}>
              <code>{p.code}</code> {p.message}
            </li>
          ))}
        </ul>
      )}
      {spec && spec.params.length > 0 && <h3>Parameters</h3>}
      {spec?.params.map((param) => (
        <ParamField
          key={`${node.id}.${param.name}`}
          spec={param}
          value={node.data.params[param.name]}
          tunables={tunables}
          onBeginEdit={onBeginEdit}
          onChange={(v) => onParam(param.name, v)}
        />
      ))}
      {spec && spec.inputs.length > 0 && (
        <>
          <h3>Inputs</h3>
          <dl className="ports">
            {spec.inputs.map((p) => (
              <div key={p.name}>
                <dt>
                  {p.name} <span className={`type-chip type-${p.type}`}>{p.type}</span>
                  {!p.required && <em> optional{p.default_source ? `, else the bar's ${p.default_source}` : ""}</em>}
                </dt>
                <dd>{p.doc}</dd>
              </div>
            ))}
          </dl>
        </>
      )}
      {spec && spec.outputs.length > 0 && (
        <>
          <h3>Outputs</h3>
          <dl className="ports">
            {spec.outputs.map((p) => (
              <div key={p.name}>
                <dt>
                  {p.name} <span className={`type-chip type-${p.type}`}>{p.type}</span>
                </dt>
                <dd>{p.doc}</dd>
              </div>
            ))}
          </dl>
        </>
      )}
    </div>
  );
}

function NodeIdField({
  id,
  takenIds,
  onRename,
}: {
  id: string;
  takenIds: ReadonlySet<string>;
  onRename: (id: string) => void;
}) {
  const [text, setText] = useState(id);
  const problem = text === id ? null : nodeIdProblem(text, takenIds);
  const commit = () => {
    if (text !== id && problem === null) onRename(text);
    else setText(id);
  };
  return (
    <div className="param-field">
      <label>
        <span className="param-name">id</span>
        <input
          value={text}
          aria-invalid={problem !== null}
          onChange={(e) => setText(e.target.value)}
          onBlur={commit}
          onKeyDown={(e) => e.key === "Enter" && commit()}
        />
      </label>
      {problem && <div className="param-error">{problem}</div>}
    </div>
  );
}

function ParamField({
  spec,
  value,
  tunables,
  onBeginEdit,
  onChange,
}: {
  spec: ParamSpec;
  value: ParamValue | undefined;
  tunables: Record<string, Tunable>;
  onBeginEdit: () => void;
  onChange: (value: ParamValue | undefined) => void;
}) {
  const ref = isParamRef(value) ? value.$param : null;
  const [text, setText] = useState(value === undefined || ref !== null ? "" : String(value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // Undo and redo change the value under the field.
    if (ref === null) setText(value === undefined ? "" : String(value));
    setError(null);
  }, [value, ref]);
  const tunableNames = Object.keys(tunables);
  const commit = (next: string) => {
    setText(next);
    const read = readParam(spec, next);
    if (read.ok) {
      setError(null);
      onChange(read.value);
    } else {
      setError(read.error);
    }
  };
  return (
    <div className="param-field">
      <label>
        <span className="param-name">
          {spec.name}
          {spec.required && spec.default === null && <em> required</em>}
        </span>
        {ref !== null ? (
          <span className="param-ref">
            tunable <code>{ref}</code>
            {tunables[ref] && (
              <small>
                {" "}
                (default {tunables[ref].default}, {tunables[ref].min}..{tunables[ref].max})
              </small>
            )}
            <button type="button" onClick={() => (onBeginEdit(), onChange(undefined))}>
              use a value
            </button>
          </span>
        ) : spec.type === "choice" ? (
          <select value={text || String(spec.default ?? "")} onFocus={onBeginEdit} onChange={(e) => commit(e.target.value)}>
            {spec.choices?.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        ) : (
          <input
            type="text"
            inputMode="decimal"
            value={text}
            placeholder={spec.default === null ? "required" : `default ${spec.default}`}
            onFocus={onBeginEdit}
            onChange={(e) => commit(e.target.value)}
            aria-invalid={error !== null}
          />
        )}
      </label>
      <div className="param-help">
        <span className="muted">{rangeText(spec)}</span> {spec.doc}
      </div>
      {error && <div className="param-error">must be {error}</div>}
      {ref === null && spec.type !== "choice" && tunableNames.length > 0 && (
        <select
          className="param-tunable"
          value=""
          onFocus={onBeginEdit}
          onChange={(e) => e.target.value && onChange({ $param: e.target.value })}
          aria-label={`drive ${spec.name} by a tunable`}
        >
          <option value="">drive by a tunable…</option>
          {tunableNames.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      )}
    </div>
  );
}
