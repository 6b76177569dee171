/**
 * The graph's tunable parameters (`parameters`): what a sweep varies. A node param is driven by
 * one from the params panel; the validator checks each tunable's range against every param it
 * drives (docs/strategy-graphs.md, "parameters").
 */
import { useEffect, useState } from "react";
import { NODE_ID, type Tunable } from "./graph";

export function tunableNameProblem(name: string, existing: Record<string, Tunable>): string | null {
  if (!NODE_ID.test(name)) return "a name: letters, digits and _, not starting with a digit";
  if (name in existing) return `there is already a tunable '${name}'`;
  return null;
}

const FIELDS = ["default", "min", "max", "step"] as const;

interface Props {
  parameters: Record<string, Tunable>;
  /** How many node params each tunable drives. */
  uses: Map<string, number>;
  onBeginEdit: () => void;
  onChange: (parameters: Record<string, Tunable>) => void;
}

export function TunablesPanel({ parameters, uses, onBeginEdit, onChange }: Props) {
  const [name, setName] = useState("");
  const problem = name === "" ? null : tunableNameProblem(name, parameters);
  const set = (key: string, tunable: Tunable | null) => {
    const next = { ...parameters };
    if (tunable === null) delete next[key];
    else next[key] = tunable;
    onChange(next);
  };
  return (
    <div className="tunables-panel">
      <h3>Tunable parameters</h3>
      {Object.keys(parameters).length === 0 && <p className="muted small">None: add one to sweep a param.</p>}
      {Object.entries(parameters).map(([key, t]) => (
        <fieldset key={key} className="tunable">
          <legend>
            <code>{key}</code> <span className="muted small">drives {uses.get(key) ?? 0} param(s)</span>
            <button type="button" className="link danger" onClick={() => (onBeginEdit(), set(key, null))}>
              remove
            </button>
          </legend>
          <div className="tunable-fields">
            {FIELDS.map((field) => (
              <NumberField
                key={field}
                label={field}
                value={t[field]}
                onFocus={onBeginEdit}
                onChange={(v) => {
                  const next: Tunable = { ...t };
                  if (v === undefined) {
                    if (field === "step") delete next.step;
                    else return;
                  } else next[field] = v;
                  set(key, next);
                }}
              />
            ))}
          </div>
          <input
            className="tunable-doc"
            placeholder="what it tunes"
            value={t.doc ?? ""}
            onFocus={onBeginEdit}
            onChange={(e) => set(key, { ...t, doc: e.target.value })}
          />
        </fieldset>
      ))}
      <form
        className="tunable-add"
        onSubmit={(e) => {
          e.preventDefault();
          if (name === "" || problem !== null) return;
          onBeginEdit();
          set(name, { default: 10, min: 2, max: 50, step: 1 });
          setName("");
        }}
      >
        <input placeholder="new tunable name" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={problem !== null} />
        <button type="submit" disabled={name === "" || problem !== null}>
          Add
        </button>
        {problem && <div className="param-error">{problem}</div>}
      </form>
    </div>
  );
}

function NumberField({
  label,
  value,
  onFocus,
  onChange,
}: {
  label: string;
  value: number | undefined;
  onFocus: () => void;
  onChange: (value: number | undefined) => void;
}) {
  const [text, setText] = useState(value === undefined ? "" : String(value));
  useEffect(() => {
    // Undo and redo change the value under the field.
    setText((current) => (Number(current) === value && current.trim() !== "" ? current : value === undefined ? "" : String(value)));
  }, [value]);
  const bad = text.trim() !== "" && !Number.isFinite(Number(text));
  return (
    <label>
      {label}
      <input
        inputMode="decimal"
        value={text}
        aria-invalid={bad}
        onFocus={onFocus}
        onChange={(e) => {
          setText(e.target.value);
          const t = e.target.value.trim();
          if (t === "") onChange(undefined);
          else if (Number.isFinite(Number(t))) onChange(Number(t));
        }}
      />
    </label>
  );
}
