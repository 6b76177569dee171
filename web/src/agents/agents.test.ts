import { describe, expect, it } from "vitest";
import {
  agentBody,
  agentProblems,
  commandBody,
  commandPending,
  commandProblems,
  EMPTY_AGENT,
  EMPTY_COMMAND,
  formatAge,
  healthTone,
  trackCommand,
  trackedCommands,
  TRACKED_COMMANDS,
} from "./agents";

function memoryStorage() {
  const items = new Map<string, string>();
  return { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, v), items };
}

describe("agents", () => {
  it("registers an agent only with what the service requires", () => {
    expect(agentProblems(EMPTY_AGENT)).toEqual([
      "a name (1 to 100 characters)",
      "an account number (1 to 64 characters)",
      "a broker (1 to 100 characters)",
    ]);
    const draft = { ...EMPTY_AGENT, name: " MT5 demo ", account_number: "123", broker: "ICM", currency: "usd" };
    expect(agentProblems(draft)).toEqual(["a currency code (3 to 8 capital letters)"]);
    expect(agentProblems({ ...draft, currency: "USD", heartbeat_seconds: "0.5" })).toEqual(["a heartbeat of 1 to 300 s"]);
    expect(agentBody({ ...draft, currency: "EUR" })).toEqual({
      name: "MT5 demo",
      platform: "mt5",
      account_number: "123",
      broker: "ICM",
      currency: "EUR",
      heartbeat_seconds: 5,
    });
  });

  it("asks each command kind for its own fields", () => {
    expect(commandProblems(EMPTY_COMMAND)).toEqual(["a message (up to 1,000 characters)"]);
    expect(commandProblems({ ...EMPTY_COMMAND, kind: "close_all" })).toEqual([]);
    expect(commandProblems({ ...EMPTY_COMMAND, kind: "open" })).toEqual(["a symbol", "a volume above 0"]);
    expect(commandProblems({ ...EMPTY_COMMAND, kind: "modify", ticket: "42" })).toEqual(["a stop loss or a take profit"]);
    expect(commandProblems({ ...EMPTY_COMMAND, kind: "modify", ticket: "42", sl: "-1" })).toContain("a stop loss of 0 or more, or none");
    expect(commandProblems({ ...EMPTY_COMMAND, kind: "close", ticket: "bad ticket" })).toEqual(["a ticket"]);
  });

  it("sends only the fields of the command's kind", () => {
    const draft = { ...EMPTY_COMMAND, symbol: "EURUSD", volume: "0.1", ticket: "7", sl: "1.05", tp: "", message: "hi" };
    expect(commandBody({ ...draft, kind: "open" })).toEqual({ kind: "open", symbol: "EURUSD", side: "buy", volume: 0.1, sl: 1.05, tp: null });
    expect(commandBody({ ...draft, kind: "close" })).toEqual({ kind: "close", ticket: "7" });
    expect(commandBody({ ...draft, kind: "modify" })).toEqual({ kind: "modify", ticket: "7", sl: 1.05, tp: null });
    expect(commandBody({ ...draft, kind: "close_all" })).toEqual({ kind: "close_all" });
    expect(commandPending("leased")).toBe(true);
    expect(commandPending("expired")).toBe(false);
  });

  it("remembers the commands queued from this tab, newest first and bounded", () => {
    const storage = memoryStorage();
    expect(trackedCommands(storage, "A")).toEqual([]);
    trackCommand(storage, "A", "c1");
    trackCommand(storage, "A", "c2");
    expect(trackCommand(storage, "A", "c1")).toEqual(["c1", "c2"]);
    expect(trackedCommands(storage, "B")).toEqual([]);
    for (let i = 0; i < 60; i++) trackCommand(storage, "A", `x${i}`);
    expect(trackedCommands(storage, "A")).toHaveLength(TRACKED_COMMANDS);
    storage.setItem("algotrade.agent-commands.C", "not json");
    expect(trackedCommands(storage, "C")).toEqual([]);
  });

  it("formats ages and health", () => {
    expect(formatAge(4_000)).toBe("4 s");
    expect(formatAge(180_000)).toBe("3 min");
    expect(formatAge(2 * 3600_000)).toBe("2 h");
    expect(formatAge(5 * 86400_000)).toBe("5 d");
    expect(healthTone(85)).toBe("status-ok");
    expect(healthTone(60)).toBe("status-waiting");
    expect(healthTone(10)).toBe("status-error");
  });
});
