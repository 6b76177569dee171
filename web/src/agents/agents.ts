/**
 * Agents as their pages show them: the connection states in order, a register form's and a
 * command form's problems, the body of a queued command, and how the command list shows each.
 *
 * The page lists an agent's commands with `GET /api/agents/{id}/queue`, the owner's read-only
 * list. It never reads `GET /api/agents/{id}/commands`: that is the agent's own long-poll, and
 * it *leases* what it returns, so a page polling it would take the commands from the terminal.
 */
import type { components } from "../api/schema";

export type CommandCreate = components["schemas"]["CommandCreate"];
export type CommandKind = CommandCreate["kind"];
export type AgentCreate = components["schemas"]["AgentCreate"];
type Command = components["schemas"]["CommandPublic"];
export type CommandState = Command["state"];

export const CONNECTION_STATES = ["healthy", "degraded", "stale", "offline"] as const;

/** A health score's colour: good from 80, poor under 50. */
export function healthTone(score: number | undefined): "status-ok" | "status-waiting" | "status-error" | "status-muted" {
  if (score === undefined) return "status-muted";
  return score >= 80 ? "status-ok" : score >= 50 ? "status-waiting" : "status-error";
}

export function connectionTone(state: string | undefined): string {
  return state === "healthy" ? "status-ok" : state === "degraded" ? "status-waiting" : state === "stale" ? "status-error" : "status-muted";
}

export interface AgentDraft {
  name: string;
  platform: AgentCreate["platform"];
  account_number: string;
  broker: string;
  currency: string;
  heartbeat_seconds: string;
}

export const EMPTY_AGENT: AgentDraft = { name: "", platform: "mt5", account_number: "", broker: "", currency: "USD", heartbeat_seconds: "5" };

/** What the register form still lacks; empty when `agentBody` can be sent. */
export function agentProblems(d: AgentDraft): string[] {
  const p: string[] = [];
  if (d.name.trim() === "" || d.name.trim().length > 100) p.push("a name (1 to 100 characters)");
  if (d.account_number.trim() === "" || d.account_number.trim().length > 64) p.push("an account number (1 to 64 characters)");
  if (d.broker.trim() === "" || d.broker.trim().length > 100) p.push("a broker (1 to 100 characters)");
  if (!/^[A-Z]{3,8}$/.test(d.currency.trim())) p.push("a currency code (3 to 8 capital letters)");
  const beat = Number(d.heartbeat_seconds);
  if (d.heartbeat_seconds.trim() === "" || !Number.isFinite(beat) || beat < 1 || beat > 300) p.push("a heartbeat of 1 to 300 s");
  return p;
}

export function agentBody(d: AgentDraft): AgentCreate {
  return {
    name: d.name.trim(),
    platform: d.platform,
    account_number: d.account_number.trim(),
    broker: d.broker.trim(),
    currency: d.currency.trim(),
    heartbeat_seconds: Number(d.heartbeat_seconds),
  };
}

export interface CommandDraft {
  kind: CommandKind;
  symbol: string;
  side: "buy" | "sell";
  volume: string;
  ticket: string;
  sl: string;
  tp: string;
  message: string;
}

export const EMPTY_COMMAND: CommandDraft = { kind: "info", symbol: "", side: "buy", volume: "", ticket: "", sl: "", tp: "", message: "" };

const positive = (v: string) => v.trim() !== "" && Number.isFinite(Number(v)) && Number(v) > 0;
const priceOrEmpty = (v: string) => v.trim() === "" || (Number.isFinite(Number(v)) && Number(v) >= 0);

/** What a command of its kind still lacks (the fields the service requires of each kind). */
export function commandProblems(d: CommandDraft): string[] {
  const p: string[] = [];
  if (d.kind === "open") {
    if (!/^[A-Za-z0-9_.:/#+-][A-Za-z0-9_.:/#+ -]{0,63}$/.test(d.symbol.trim())) p.push("a symbol");
    if (!positive(d.volume)) p.push("a volume above 0");
  }
  if ((d.kind === "close" || d.kind === "modify") && !/^[A-Za-z0-9_.:-]{1,64}$/.test(d.ticket.trim())) p.push("a ticket");
  if (d.kind === "open" || d.kind === "modify") {
    if (!priceOrEmpty(d.sl)) p.push("a stop loss of 0 or more, or none");
    if (!priceOrEmpty(d.tp)) p.push("a take profit of 0 or more, or none");
  }
  if (d.kind === "modify" && d.sl.trim() === "" && d.tp.trim() === "") p.push("a stop loss or a take profit");
  if (d.kind === "info" && (d.message.trim() === "" || d.message.length > 1000)) p.push("a message (up to 1,000 characters)");
  return p;
}

/** The request for a command draft: only the fields of its kind. */
export function commandBody(d: CommandDraft): CommandCreate {
  const num = (v: string) => (v.trim() === "" ? null : Number(v));
  switch (d.kind) {
    case "open":
      return { kind: "open", symbol: d.symbol.trim(), side: d.side, volume: Number(d.volume), sl: num(d.sl), tp: num(d.tp) };
    case "close":
      return { kind: "close", ticket: d.ticket.trim() };
    case "modify":
      return { kind: "modify", ticket: d.ticket.trim(), sl: num(d.sl), tp: num(d.tp) };
    case "info":
      return { kind: "info", message: d.message.trim() };
    case "close_all":
      return { kind: "close_all" };
  }
}

/** A command is still moving while queued or leased; ended ones need no more polling. */
export function commandPending(state: string): boolean {
  return state === "queued" || state === "leased";
}

/** The command list's filters: each a set of states (`state=` repeated), "all" none. */
export const QUEUE_FILTERS = {
  all: [],
  pending: ["queued", "leased"],
  executed: ["executed"],
  rejected: ["rejected"],
  failed: ["failed"],
  expired: ["expired"],
} as const satisfies Record<string, readonly CommandState[]>;
export type QueueFilter = keyof typeof QUEUE_FILTERS;

export function commandTone(state: CommandState): "status-ok" | "status-waiting" | "status-error" {
  return state === "executed" ? "status-ok" : commandPending(state) ? "status-waiting" : "status-error";
}

/** What a command asks, in a line: "EURUSD buy 0.1 sl 1.05", "#42 tp 1.1", the message. */
export function commandSummary(c: Pick<Command, "symbol" | "side" | "volume" | "ticket" | "sl" | "tp" | "message">): string {
  const has = <T,>(v: T | null | undefined): v is T => v !== null && v !== undefined;
  return [
    c.symbol,
    c.side,
    has(c.volume) ? String(c.volume) : null,
    c.ticket ? `#${c.ticket}` : null,
    has(c.sl) ? `sl ${c.sl}` : null,
    has(c.tp) ? `tp ${c.tp}` : null,
    c.message,
  ]
    .filter((part): part is string => has(part) && part !== "")
    .join(" ");
}

/** What came back: the terminal's ticket, price and volume, or the error. */
export function commandOutcome(c: Pick<Command, "result" | "error">): string {
  const r = c.result ?? {};
  const parts = [
    typeof r.ticket === "string" ? `#${r.ticket}` : null,
    typeof r.price === "number" ? `@ ${r.price}` : null,
    typeof r.volume === "number" ? `vol ${r.volume}` : null,
    typeof r.error === "string" ? r.error : null,
    c.error ?? null,
  ];
  return parts.filter((part): part is string => part !== null && part !== "").join(" ");
}

/** Milliseconds as a short age: "4 s", "3 min", "2 h", "5 d". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
