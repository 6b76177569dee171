import { describe, expect, it } from "vitest";
import type { components } from "../api/schema";
import type { PushedEvent } from "./cutover";
import { applyToAgent, applyToCommand, applyToEquity, applyToSession, applyToTrades, checkAgentPush, checkSessionPush } from "./pushes";

type Session = components["schemas"]["SessionPublic"];
type Agent = components["schemas"]["AgentPublic"];
type Command = components["schemas"]["CommandPublic"];

const SID = "01J0000000000000000000000S";
const T0 = Date.parse("2026-12-01T10:00:00Z");
const event = (type: string, payload: Record<string, unknown>): PushedEvent => ({ id: "e", type, occurred_at: "2026-12-01T10:00:01Z", payload });

const session = (over: Partial<Session> = {}): Session =>
  ({
    id: SID,
    status: "running",
    equity: 10_000,
    cash: 10_000,
    position: 0,
    bars_applied: 10,
    last_bar_time: "2026-12-01T09:59:00Z",
    warmed_up: false,
    error: null,
    capital: 10_000,
    symbol: "BTCUSDT",
    timeframe: "1m",
    ...over,
  }) as Session;

const equityEvent = (bars: number, points: [number, number, number][] = []) =>
  event("session.equity", { session_id: SID, ts: T0, equity: 10_050, cash: 50, position: 1, bars_applied: bars, points });

describe("applyToSession", () => {
  it("takes the account of a session.equity, unless it is older than the session", () => {
    expect(applyToSession(session(), equityEvent(11))).toMatchObject({
      equity: 10_050,
      cash: 50,
      position: 1,
      bars_applied: 11,
      last_bar_time: "2026-12-01T10:00:00.000Z",
    });
    expect(applyToSession(session({ bars_applied: 12 }), equityEvent(11))).toBeNull();
  });
  it("takes a status change, a failure's reason and the warm-up", () => {
    expect(applyToSession(session(), event("session.paused", { session_id: SID, status: "paused" }))?.status).toBe("paused");
    expect(applyToSession(session({ status: "paused" }), event("session.resumed", { session_id: SID, status: "running" }))?.status).toBe("running");
    expect(applyToSession(session(), event("session.failed", { session_id: SID, reason: "feed gone" }))).toMatchObject({ status: "failed", error: "feed gone" });
    expect(applyToSession(session(), event("session.warmed_up", { session_id: SID, ts: T0, bars_applied: 5 }))?.warmed_up).toBe(true);
    expect(applyToSession(session(), event("order.filled", { session_id: SID }))).toBeNull();
  });
});

describe("session.terminal", () => {
  const terminal = {
    position: 0,
    cash: 10_000,
    equity: 10_000,
    realized_pnl: 0,
    costs: 0,
    mark: 101,
    open_tickets: 0,
    trades: 0,
    deals: 0,
    orders: { executed: 0, refused: 0, pending: 1 },
  };
  const acked = event("session.terminal", {
    session_id: SID,
    cause: "ack",
    seq: 0,
    position: 2,
    cash: 9_800,
    realized_pnl: 0,
    costs: -1.5,
    open_tickets: 1,
    trades: 0,
    executed: 1,
    refused: 0,
    pending: 0,
    closed: [],
  });

  it("takes the terminal account, marked at the last close, unless it is older", () => {
    const after = applyToSession(session({ terminal }), acked);
    expect(after?.terminal).toMatchObject({ position: 2, cash: 9_800, costs: -1.5, equity: 9_800 + 2 * 101, open_tickets: 1 });
    expect(after?.terminal?.orders).toEqual({ executed: 1, refused: 0, pending: 0 });
    const later = { ...terminal, orders: { executed: 2, refused: 0, pending: 0 } };
    expect(applyToSession(session({ terminal: later }), acked)).toBeNull();
    expect(applyToSession(session(), acked)).toBeNull(); // a paper session has no terminal
  });

  it("compares it with the terminal over REST, unless REST has seen later acks", () => {
    const same = { ...terminal, position: 2, cash: 9_800, costs: -1.5, open_tickets: 1, orders: { executed: 1, refused: 0, pending: 0 } };
    expect(checkSessionPush(acked, { session: session({ terminal: same }) })).toEqual({ kind: "agree" });
    expect(checkSessionPush(acked, { session: session({ terminal: { ...same, cash: 9_700 } }) })).toMatchObject({ kind: "differ" });
    expect(checkSessionPush(acked, { session: session({ terminal: { ...same, costs: 0 } }) })).toMatchObject({ kind: "differ" });
    const later = { ...same, orders: { executed: 3, refused: 0, pending: 0 } };
    expect(checkSessionPush(acked, { session: session({ terminal: later }) })).toEqual({ kind: "moved_on" });
    // A sync recorded a deal of the terminal's own since: the account moved on, not apart.
    const synced = { ...same, cash: 9_900, deals: 1 };
    expect(checkSessionPush(acked, { session: session({ terminal: synced }) })).toEqual({ kind: "moved_on" });
    expect(applyToSession(session({ terminal: synced }), acked)).toBeNull();
  });
});

describe("applyToEquity", () => {
  const page = { session_id: SID, method: "all" as const, total_points: 1, points: [{ ts: new Date(T0).toISOString(), equity: 10_000, position: 0 }] };
  it("appends the points after the curve's last, once", () => {
    const next = applyToEquity(page, equityEvent(12, [[T0, 10_000, 0], [T0 + 60_000, 10_020, 1], [T0 + 120_000, 10_050, 1]]));
    expect(next?.points.map((p) => p.equity)).toEqual([10_000, 10_020, 10_050]);
    expect(next?.points[2]).toEqual({ ts: "2026-12-01T10:02:00.000Z", equity: 10_050, position: 1 });
    expect(next?.total_points).toBe(3);
    expect(applyToEquity(page, equityEvent(10, [[T0, 10_000, 0]]))).toBeNull();
  });
});

const tradeClosed = (seq: number, pnl = 12.5) =>
  event("trade.closed", {
    session_id: SID,
    seq,
    side: "long",
    entry_ts: T0,
    exit_ts: T0 + 300_000,
    entry_price: 100,
    exit_price: 101.25,
    quantity: 10,
    pnl,
    fees: 0,
    exit_reason: "signal",
  });

const restTrade = (seq: number, pnl = 12.5) => ({
  seq,
  side: "long" as const,
  entry_time: "2026-12-01T10:00:00Z",
  exit_time: "2026-12-01T10:05:00Z",
  entry_price: 100,
  exit_price: 101.25,
  quantity: 10,
  pnl,
  fees: 0,
  exit_reason: "signal",
});

describe("applyToTrades", () => {
  const page = { session_id: SID, total: 2, offset: 0, limit: 500, trades: [restTrade(0), restTrade(1)] };
  it("appends a new closed trade, keeping the latest ones", () => {
    const next = applyToTrades(page, tradeClosed(2), 2);
    expect(next?.trades.map((t) => t.seq)).toEqual([1, 2]);
    expect(next).toMatchObject({ total: 3, offset: 1 });
    expect(next?.trades[1]?.entry_time).toBe("2026-12-01T10:00:00.000Z");
  });
  it("ignores a trade the page already has", () => {
    expect(applyToTrades(page, tradeClosed(1), 500)).toBeNull();
  });
});

describe("checkSessionPush", () => {
  it("waits for the REST answer it needs", () => {
    expect(checkSessionPush(equityEvent(11), {}).kind).toBe("wait");
    expect(checkSessionPush(tradeClosed(0), { session: session() }).kind).toBe("wait");
  });
  it("compares a session.equity with the session at the same bar, field by field", () => {
    const at = session({ bars_applied: 11, equity: 10_050, cash: 50, position: 1, last_bar_time: "2026-12-01T10:00:00Z" });
    expect(checkSessionPush(equityEvent(11), { session: at })).toEqual({ kind: "agree" });
    expect(checkSessionPush(equityEvent(11), { session: { ...at, cash: 49 } })).toEqual({ kind: "differ", differences: [{ field: "cash", pushed: 50, rest: 49 }] });
    expect(checkSessionPush(equityEvent(11), { session: { ...at, bars_applied: 12 } }).kind).toBe("moved_on");
  });
  it("compares a status change and a failure's reason", () => {
    expect(checkSessionPush(event("session.paused", { session_id: SID, status: "paused" }), { session: session({ status: "paused" }) }).kind).toBe("agree");
    expect(checkSessionPush(event("session.failed", { session_id: SID, reason: "x" }), { session: session({ status: "failed", error: "y" }) })).toEqual({
      kind: "differ",
      differences: [{ field: "error", pushed: "x", rest: "y" }],
    });
  });
  it("compares a closed trade with the same trade over REST, and notes one REST lacks", () => {
    const page = { session_id: SID, total: 2, offset: 0, limit: 500, trades: [restTrade(0), restTrade(1, 12)] };
    expect(checkSessionPush(tradeClosed(0), { trades: page }).kind).toBe("agree");
    expect(checkSessionPush(tradeClosed(1), { trades: page })).toEqual({ kind: "differ", differences: [{ field: "pnl", pushed: 12.5, rest: 12 }] });
    expect(checkSessionPush(tradeClosed(5), { trades: page })).toEqual({ kind: "differ", differences: [{ field: "seq", pushed: 5, rest: null }] });
    expect(checkSessionPush(tradeClosed(0), { trades: { ...page, trades: [restTrade(1)] } }).kind).toBe("moved_on");
  });
  it("leaves fills unchecked: the page shows none", () => {
    expect(checkSessionPush(event("order.filled", { session_id: SID, seq: 0 }), { session: session() }).kind).toBe("unchecked");
  });
});

const AID = "01J0000000000000000000000A";
const agent = (state: "healthy" | "degraded" | "stale" | "offline", lastBeat: string | null): Agent =>
  ({ id: AID, name: "mt5", connection: { state, last_heartbeat_at: lastBeat, heartbeats: 3, account: null, interval_ms: null, jitter_ms: null, latency_ms: null, clock_offset_ms: null } }) as Agent;
const connection = (state: string, beat: number) => event("agent.degraded", { agent_id: AID, state, previous: "healthy", last_heartbeat_ms: beat });

describe("agents", () => {
  it("shows a connection change on the agent", () => {
    const next = applyToAgent(agent("healthy", "2026-12-01T09:59:00Z"), connection("degraded", T0));
    expect(next?.connection).toMatchObject({ state: "degraded", last_heartbeat_at: "2026-12-01T10:00:00.000Z" });
  });
  it("compares a connection change, unless a heartbeat since has moved it on", () => {
    expect(checkAgentPush(connection("degraded", T0), { agent: agent("degraded", "2026-12-01T10:00:00Z") }, new Set()).kind).toBe("agree");
    expect(checkAgentPush(connection("degraded", T0), { agent: agent("healthy", "2026-12-01T10:00:00Z") }, new Set())).toEqual({
      kind: "differ",
      differences: [{ field: "state", pushed: "degraded", rest: "healthy" }],
    });
    expect(checkAgentPush(connection("degraded", T0), { agent: agent("healthy", "2026-12-01T10:00:05Z") }, new Set()).kind).toBe("moved_on");
    expect(checkAgentPush(connection("degraded", T0), {}, new Set()).kind).toBe("wait");
  });
  const ended = event("agent.command.executed", {
    agent_id: AID,
    command_id: "C1",
    kind: "open",
    outcome: "executed",
    attempts: 1,
    idempotency_key: "k",
    ticket: "77",
    price: 1.1,
    volume: 0.1,
  });
  const command = { id: "C1", agent_id: AID, kind: "open", state: "leased", attempts: 1, idempotency_key: "k", ticket: null, volume: 0.1 } as Command;
  it("shows a command's end and compares it with the command when this tab queued it", () => {
    expect(applyToCommand(command, ended)).toMatchObject({ state: "executed", ticket: "77" });
    expect(applyToCommand({ ...command, id: "C2" }, ended)).toBeNull();
    expect(checkAgentPush(ended, {}, new Set()).kind).toBe("unchecked");
    expect(checkAgentPush(ended, {}, new Set(["C1"])).kind).toBe("wait");
    expect(checkAgentPush(ended, { "command:C1": { ...command, state: "executed", ticket: "77" } }, new Set(["C1"])).kind).toBe("agree");
    expect(checkAgentPush(ended, { "command:C1": command }, new Set(["C1"]))).toEqual({
      kind: "differ",
      differences: [
        { field: "ticket", pushed: "77", rest: null },
        { field: "state", pushed: "executed", rest: "leased" },
      ],
    });
  });
});
