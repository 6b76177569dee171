import { describe, expect, it } from "vitest";
import {
  agentBody,
  agentProblems,
  commandBody,
  commandOutcome,
  commandPending,
  commandProblems,
  commandSummary,
  commandTone,
  EMPTY_AGENT,
  EMPTY_COMMAND,
  formatAge,
  healthTone,
  QUEUE_FILTERS,
} from "./agents";

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

  it("shows a listed command's request, state and outcome in a line each", () => {
    expect(commandSummary({ symbol: "EURUSD", side: "buy", volume: 0.1, sl: 1.05, tp: null })).toBe("EURUSD buy 0.1 sl 1.05");
    expect(commandSummary({ ticket: "42", sl: 0, tp: 1.1 })).toBe("#42 sl 0 tp 1.1");
    expect(commandSummary({ message: "hello" })).toBe("hello");
    expect(commandOutcome({ result: { ticket: "T1", price: 1.0841, volume: 0.1 } })).toBe("#T1 @ 1.0841 vol 0.1");
    expect(commandOutcome({ result: { error: "TRADE_RETCODE_NO_MONEY" } })).toBe("TRADE_RETCODE_NO_MONEY");
    expect(commandOutcome({ result: null, error: "not acknowledged after 5 deliveries" })).toBe("not acknowledged after 5 deliveries");
    expect(commandOutcome({ result: null })).toBe("");
    expect([commandTone("executed"), commandTone("leased"), commandTone("expired")]).toEqual(["status-ok", "status-waiting", "status-error"]);
    expect(QUEUE_FILTERS.pending).toEqual(["queued", "leased"]);
    expect(QUEUE_FILTERS.all).toEqual([]);
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
