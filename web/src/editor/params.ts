/** Reading a param's value from the side panel's text, against its spec. */
import type { ParamSpec } from "./catalog";

export type ParamInput = { ok: true; value: number | string | undefined } | { ok: false; error: string };

/** `text` as the value of `spec`; empty means "use the default" (undefined). */
export function readParam(spec: ParamSpec, text: string): ParamInput {
  const trimmed = text.trim();
  if (trimmed === "") {
    return spec.required && spec.default === null
      ? { ok: false, error: "required: this param has no default" }
      : { ok: true, value: undefined };
  }
  if (spec.type === "choice") {
    return spec.choices?.includes(trimmed)
      ? { ok: true, value: trimmed }
      : { ok: false, error: `one of ${spec.choices?.join(", ")}` };
  }
  const value = Number(trimmed);
  if (!Number.isFinite(value)) return { ok: false, error: "a number" };
  if (spec.type === "int" && !Number.isInteger(value)) return { ok: false, error: "a whole number" };
  if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
    return { ok: false, error: `between ${spec.min} and ${spec.max}` };
  }
  return { ok: true, value };
}

export function rangeText(spec: ParamSpec): string {
  if (spec.type === "choice") return (spec.choices ?? []).join(" / ");
  return `${spec.type} ${spec.min ?? "−∞"}..${spec.max ?? "∞"}`;
}
