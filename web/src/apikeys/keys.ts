/**
 * API keys as the page shows them: the scopes a key can hold (the gateway's
 * `api_gateway.scopes`, which the OpenAPI does not enumerate) and a key's state.
 */

export const RESOURCES = ["market", "strategies", "backtests", "sessions", "agents", "analytics"] as const;

/** Every scope the gateway accepts, in the order the form lists them. */
export const SCOPES: string[] = [...RESOURCES.flatMap((r) => [`${r}:read`, `${r}:write`]), "notifications:read"];

export type KeyState = "active" | "revoked" | "expired";

export function keyState(key: { revoked_at: string | null; expires_at: string | null }, now: Date): KeyState {
  if (key.revoked_at !== null) return "revoked";
  if (key.expires_at !== null && new Date(key.expires_at).getTime() <= now.getTime()) return "expired";
  return "active";
}

/** The scopes of a key created for one agent (`agent:<id>` binds it): its agent's id, or null. */
export function boundAgent(scopes: string[]): string | null {
  const binding = scopes.find((s) => s.startsWith("agent:"));
  return binding === undefined ? null : binding.slice("agent:".length);
}

/** What a new key's form still lacks, in words; empty when it can be created. */
export function keyFormProblems(name: string, scopes: Set<string>, expiresInDays: string): string[] {
  const problems: string[] = [];
  if (name.trim() === "") problems.push("a name");
  if (name.trim().length > 100) problems.push("a name of at most 100 characters");
  if (scopes.size === 0) problems.push("at least one scope");
  if (expiresInDays.trim() !== "") {
    const days = Number(expiresInDays);
    if (!Number.isInteger(days) || days < 1 || days > 3650) problems.push("an expiry of 1 to 3,650 days, or none");
  }
  return problems;
}
