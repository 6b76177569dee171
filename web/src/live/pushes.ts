/**
 * What each pushed event says about the REST data a page shows, for the two pages that follow a
 * channel: `session:{id}` (algotrade.session_events) and `agent:{id}` (algotrade.agent_events).
 * `apply*` turns REST data into what it is after the event (live mode; null: the event does not
 * change it, or is older than it); `check*` compares the event with REST answers fetched after it
 * (shadow mode), on the fields both have. Pure.
 */
import type { components } from "../api/schema";
import { differences, verdictOf, type PushedEvent, type Verdict } from "./cutover";
import { terminalMoves } from "../sessions/terminal";

type Session = components["schemas"]["SessionPublic"];
type EquityPage = components["schemas"]["forward-test-service.EquityPublic"];
type TradesPage = components["schemas"]["forward-test-service.TradesPage"];
type Trade = components["schemas"]["forward-test-service.TradePublic"];
type Agent = components["schemas"]["AgentPublic"];
type Command = components["schemas"]["CommandPublic"];

const iso = (ms: unknown) => (typeof ms === "number" ? new Date(ms).toISOString() : null);
/** A REST time as epoch ms, to compare with a payload's (null stays null). */
const ms = (t: string | null | undefined) => (t ? Date.parse(t) : null);
const num = (v: unknown) => (typeof v === "number" ? v : null);

const SESSION_STATUS: Record<string, Session["status"]> = {
  "session.paused": "paused",
  "session.resumed": "running",
  "session.stopped": "stopped",
  "session.failed": "failed",
};

/** The session after a `session.equity`, a status change or `session.warmed_up`. */
export function applyToSession(s: Session, e: PushedEvent): Session | null {
  const p = e.payload;
  if (e.type === "session.equity") {
    const bars = num(p.bars_applied);
    if (bars === null || bars < s.bars_applied) return null;
    return {
      ...s,
      equity: num(p.equity) ?? s.equity,
      cash: num(p.cash) ?? s.cash,
      position: num(p.position) ?? s.position,
      bars_applied: bars,
      last_bar_time: iso(p.ts) ?? s.last_bar_time,
    };
  }
  const status = SESSION_STATUS[e.type];
  if (status !== undefined) {
    return { ...s, status, error: e.type === "session.failed" ? String(p.reason ?? "") : s.error };
  }
  if (e.type === "session.warmed_up") return { ...s, warmed_up: true };
  if (e.type === "session.terminal") return withTerminal(s, p);
  return null;
}

/** Agent mode: the terminal account after a `session.terminal` (an ack or a sync), marked at the
 * last close the page knows; null when it is older than what the page shows. */
function withTerminal(s: Session, p: Record<string, unknown>): Session | null {
  const t = s.terminal;
  const executed = num(p.executed);
  const refused = num(p.refused);
  const position = num(p.position);
  const cash = num(p.cash);
  if (!t || executed === null || refused === null || position === null || cash === null) return null;
  if (executed + refused + (num(p.deals) ?? 0) < terminalMoves(t)) return null;
  const realized = num(p.realized_pnl) ?? t.realized_pnl;
  const costs = num(p.costs) ?? t.costs;
  return {
    ...s,
    terminal: {
      ...t,
      position,
      cash,
      realized_pnl: realized,
      costs,
      equity:
        t.mark === null || t.mark === undefined ? s.capital + realized + costs : cash + position * t.mark,
      open_tickets: num(p.open_tickets) ?? t.open_tickets,
      deals: num(p.deals) ?? t.deals,
      trades: num(p.trades) ?? t.trades,
      orders: { executed, refused, pending: num(p.pending) ?? t.orders.pending },
    },
  };
}

/** The equity curve with a `session.equity`'s points after its last one (a point may come twice). */
export function applyToEquity(page: EquityPage, e: PushedEvent): EquityPage | null {
  if (e.type !== "session.equity" || !Array.isArray(e.payload.points)) return null;
  const lastPoint = page.points[page.points.length - 1];
  const last = lastPoint !== undefined ? Date.parse(lastPoint.ts) : -Infinity;
  const added = (e.payload.points as unknown[])
    .filter((pt): pt is [number, number, number] => Array.isArray(pt) && pt.length === 3 && pt.every((x) => typeof x === "number"))
    .filter(([ts]) => ts > last)
    .map(([ts, equity, position]) => ({ ts: new Date(ts).toISOString(), equity, position }));
  if (added.length === 0) return null;
  return { ...page, points: [...page.points, ...added], total_points: page.total_points + added.length };
}

function tradeOf(p: Record<string, unknown>): Trade {
  return {
    seq: num(p.seq) ?? -1,
    side: p.side === "short" ? "short" : "long",
    entry_time: iso(p.entry_ts) ?? "",
    exit_time: iso(p.exit_ts) ?? "",
    entry_price: num(p.entry_price) ?? 0,
    exit_price: num(p.exit_price) ?? 0,
    quantity: num(p.quantity) ?? 0,
    pnl: num(p.pnl) ?? 0,
    fees: num(p.fees) ?? 0,
    exit_reason: String(p.exit_reason ?? ""),
  };
}

/** The latest `keep` trades with a `trade.closed` appended (once, in order). */
export function applyToTrades(page: TradesPage, e: PushedEvent, keep: number): TradesPage | null {
  if (e.type !== "trade.closed") return null;
  const trade = tradeOf(e.payload);
  const last = page.trades[page.trades.length - 1]?.seq ?? -1;
  if (trade.seq <= last || trade.seq < page.total) return null; // already there, or the REST page is past it
  const trades = [...page.trades, trade].slice(-keep);
  return { ...page, trades, total: trade.seq + 1, offset: trade.seq + 1 - trades.length };
}

/**
 * A session push against the REST answers fetched after it: `session` (GET /api/sessions/{id})
 * and `trades` (the latest trades page).
 */
export function checkSessionPush(e: PushedEvent, fresh: { session?: unknown; trades?: unknown }): Verdict {
  const p = e.payload;
  const s = fresh.session as Session | undefined;
  if (e.type === "trade.closed") {
    const page = fresh.trades as TradesPage | undefined;
    if (page === undefined) return { kind: "wait" };
    const seq = num(p.seq) ?? -1;
    const rest = page.trades.find((t) => t.seq === seq);
    if (rest === undefined) {
      const first = page.trades[0]?.seq;
      return first !== undefined && seq < first ? { kind: "moved_on" } : verdictOf([{ field: "seq", pushed: seq, rest: null }]);
    }
    const pushed = tradeOf(p);
    return verdictOf(
      differences(
        { ...pushed, entry_time: ms(pushed.entry_time), exit_time: ms(pushed.exit_time) },
        { ...rest, entry_time: ms(rest.entry_time), exit_time: ms(rest.exit_time) },
      ),
    );
  }
  if (e.type === "order.filled") return { kind: "unchecked" }; // the page shows no fills, only closed trades
  if (s === undefined) return { kind: "wait" };
  if (e.type === "session.equity") {
    const bars = num(p.bars_applied) ?? 0;
    if (s.bars_applied > bars) return { kind: "moved_on" };
    return verdictOf(
      differences(
        { equity: p.equity, cash: p.cash, position: p.position, bars_applied: bars, last_bar_time: p.ts },
        { ...s, last_bar_time: ms(s.last_bar_time) },
      ),
    );
  }
  if (e.type in SESSION_STATUS) {
    const pushed: Record<string, unknown> = { status: SESSION_STATUS[e.type] };
    if (e.type === "session.failed") pushed.error = p.reason;
    return verdictOf(differences(pushed, s));
  }
  if (e.type === "session.warmed_up") return verdictOf(differences({ warmed_up: true }, s));
  if (e.type === "session.terminal") {
    const t = s.terminal;
    if (!t) return verdictOf([{ field: "terminal", pushed: "an account", rest: null }]);
    const pushed = (num(p.executed) ?? 0) + (num(p.refused) ?? 0) + (num(p.deals) ?? 0);
    if (terminalMoves(t) > pushed) return { kind: "moved_on" };
    const { position, cash, realized_pnl, costs, open_tickets, trades } = p;
    return verdictOf(differences({ position, cash, realized_pnl, costs, open_tickets, trades }, t));
  }
  if (e.type === "session.started") {
    const { session_id: _id, last_bar_ts: _last, warmup_bars: _bars, ...rest } = p;
    return verdictOf(differences(rest, s));
  }
  return { kind: "unchecked" };
}

const AGENT_STATE = new Set(["agent.connected", "agent.degraded", "agent.disconnected"]);
const COMMAND_END = new Set(["agent.command.executed", "agent.command.rejected", "agent.command.failed", "agent.command.expired"]);

/** The agent after a connection change. */
export function applyToAgent(a: Agent, e: PushedEvent): Agent | null {
  if (!AGENT_STATE.has(e.type) || a.connection === null || a.connection === undefined) return null;
  const state = e.payload.state as NonNullable<Agent["connection"]>["state"];
  const heartbeat = iso(e.payload.last_heartbeat_ms);
  return { ...a, connection: { ...a.connection, state, last_heartbeat_at: heartbeat ?? a.connection.last_heartbeat_at } };
}

/** The id of the command a push ended, if it is one. */
export const endedCommand = (e: PushedEvent): string | null => (COMMAND_END.has(e.type) && typeof e.payload.command_id === "string" ? e.payload.command_id : null);

/** A command after the push that ended it. */
export function applyToCommand(c: Command, e: PushedEvent): Command | null {
  if (endedCommand(e) !== c.id) return null;
  const p = e.payload;
  return {
    ...c,
    state: p.outcome as Command["state"],
    attempts: num(p.attempts) ?? c.attempts,
    ticket: typeof p.ticket === "string" ? p.ticket : c.ticket,
    volume: num(p.volume) ?? c.volume,
    message: typeof p.error === "string" ? p.error : c.message,
  };
}

/**
 * An agent push against the REST answers fetched after it: `agent` (GET /api/agents/{id}) and
 * `command:{id}` (a command the page shows; `tracked`: their ids).
 */
export function checkAgentPush(e: PushedEvent, fresh: Record<string, unknown>, tracked: ReadonlySet<string>): Verdict {
  const p = e.payload;
  if (AGENT_STATE.has(e.type)) {
    const a = fresh.agent as Agent | undefined;
    if (a === undefined) return { kind: "wait" };
    const c = a.connection ?? null;
    const restBeat = ms(c?.last_heartbeat_at);
    const pushedBeat = num(p.last_heartbeat_ms);
    const diffs = differences({ state: p.state }, { state: c?.state ?? "offline" });
    // a heartbeat since the push may have moved the state again
    if (diffs.length > 0 && restBeat !== null && pushedBeat !== null && restBeat > pushedBeat) return { kind: "moved_on" };
    return verdictOf(diffs);
  }
  const id = endedCommand(e);
  if (id !== null) {
    if (!tracked.has(id)) return { kind: "unchecked" }; // a command the page does not show
    const c = fresh[`command:${id}`] as Command | undefined;
    if (c === undefined) return { kind: "wait" };
    const { outcome, command_id: _id, agent_id: _agent, error: _error, price: _price, ...rest } = p;
    return verdictOf(differences({ ...rest, state: outcome }, c));
  }
  return { kind: "unchecked" }; // a sync conflict: the page shows the last sync's counts, read separately
}
