import { describe, expect, it } from "vitest";
import { boundAgent, keyFormProblems, keyState, SCOPES } from "./keys";

describe("API keys", () => {
  const now = new Date("2026-12-03T12:00:00Z");

  it("tells active, revoked and expired keys apart", () => {
    expect(keyState({ revoked_at: null, expires_at: null }, now)).toBe("active");
    expect(keyState({ revoked_at: null, expires_at: "2027-01-01T00:00:00Z" }, now)).toBe("active");
    expect(keyState({ revoked_at: null, expires_at: "2026-12-03T12:00:00Z" }, now)).toBe("expired");
    expect(keyState({ revoked_at: "2026-11-01T00:00:00Z", expires_at: "2026-12-01T00:00:00Z" }, now)).toBe("revoked");
  });

  it("lists the gateway's scopes", () => {
    expect(SCOPES).toHaveLength(13);
    expect(SCOPES).toContain("agents:write");
    expect(SCOPES).toContain("notifications:read");
  });

  it("finds the agent a key is bound to", () => {
    expect(boundAgent(["agents:read", "agent:01JAGENT"])).toBe("01JAGENT");
    expect(boundAgent(["agents:read"])).toBeNull();
  });

  it("says what a new key still needs", () => {
    expect(keyFormProblems("ci", new Set(["market:read"]), "")).toEqual([]);
    expect(keyFormProblems(" ", new Set(), "")).toEqual(["a name", "at least one scope"]);
    expect(keyFormProblems("ci", new Set(["market:read"]), "0")).toHaveLength(1);
    expect(keyFormProblems("ci", new Set(["market:read"]), "1.5")).toHaveLength(1);
    expect(keyFormProblems("ci", new Set(["market:read"]), "3650")).toEqual([]);
  });
});
