/**
 * The notification cutover as a page sees it (docs/notifications.md, "Cutover by family"): the
 * server gives each message family a mode, and a page refreshes each REST source it shows by the
 * modes of the families that source's data belongs to.
 *
 * - `rest`: nothing is pushed; the page polls.
 * - `shadow`: the page polls and shows REST data; pushes are counted and compared with the REST
 *   answers fetched after them, and their differences recorded.
 * - `live`: the page shows pushed data and stops polling (while the socket is subscribed).
 *
 * Pure: the hook (useCutover.ts) and the panel (LivePanel.tsx) are built on it.
 */

export const FAMILIES = ["account", "positions", "orders", "intraday_bars", "market_status", "sessions", "backtests", "agents"] as const;
export type Family = (typeof FAMILIES)[number];
export type Mode = "rest" | "shadow" | "live";
/** The modes as last heard; a family missing is unknown (treated as polled). */
export type Modes = Partial<Record<Family, Mode>>;
/** The socket as far as one channel goes: subscribed, on its way, or not there (down, refused). */
export type SocketState = "connecting" | "subscribed" | "down";

const isFamily = (v: unknown): v is Family => typeof v === "string" && (FAMILIES as readonly string[]).includes(v);
const isMode = (v: unknown): v is Mode => v === "rest" || v === "shadow" || v === "live";

/** The known families with a known mode out of a `features` object (REST, `welcome`, `features`). */
export function readModes(raw: unknown): Modes {
  const modes: Modes = {};
  if (typeof raw !== "object" || raw === null) return modes;
  for (const [family, mode] of Object.entries(raw)) if (isFamily(family) && isMode(mode)) modes[family] = mode;
  return modes;
}

/** A REST source of a page: the families its data belongs to, and whether pushes carry all of it. */
export type Source = { families: readonly Family[]; complete: boolean };

/**
 * How a source is refreshed:
 * - `poll`: at the page's pace: a family of it is not live, the modes are unknown, the socket is
 *   not subscribed (the safety net, whatever the modes), or no family carries it;
 * - `pushed`: not at all: every family is live and the pushes carry every field it shows;
 * - `safety`: slowly: every family is live but some fields it shows are in no push.
 */
export type Cadence = "poll" | "safety" | "pushed";

export function cadence(source: Source, modes: Modes | undefined, socket: SocketState): Cadence {
  if (socket !== "subscribed" || modes === undefined || source.families.length === 0) return "poll";
  if (source.families.some((f) => modes[f] !== "live")) return "poll";
  return source.complete ? "pushed" : "safety";
}

/** TanStack Query's `refetchInterval` for a cadence. */
export function refetchEvery(c: Cadence, pollMs: number, safetyMs: number): number | false {
  return c === "poll" ? pollMs : c === "safety" ? safetyMs : false;
}

/**
 * What the page does with a pushed event: show it (`live`, and the server did not mark it a
 * shadow push), compare it with REST (`shadow`, or a mode not known yet), or drop it (`rest`: it
 * was sent before the switch reached the page).
 */
export function pushUse(mode: Mode | undefined, shadow: boolean): "apply" | "compare" | "ignore" {
  if (mode === "live" && !shadow) return "apply";
  if (mode === "rest") return "ignore";
  return "compare";
}

export type PushedEvent = { id: string; type: string; occurred_at: string; payload: Record<string, unknown> };

export type SocketMessage =
  | { kind: "features"; modes: Modes }
  | { kind: "subscribed" }
  | { kind: "snapshot"; data: Record<string, unknown> }
  | { kind: "event"; family: Family; shadow: boolean; event: PushedEvent }
  | { kind: "gap" }
  | { kind: "refused" }
  | { kind: "retry" }
  | { kind: "ignore" };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What a server message means for a page watching `channel` (the modes come on any channel). */
export function readMessage(message: unknown, channel: string): SocketMessage {
  if (!isRecord(message)) return { kind: "ignore" };
  if (message.type === "welcome" || message.type === "features") return { kind: "features", modes: readModes(message.features) };
  if (message.channel !== channel) return { kind: "ignore" };
  switch (message.type) {
    case "subscribed":
      return { kind: "subscribed" };
    case "snapshot":
      return isRecord(message.data) ? { kind: "snapshot", data: message.data } : { kind: "ignore" };
    case "event": {
      const e = message.event;
      if (!isFamily(message.family) || !isRecord(e) || typeof e.type !== "string" || !isRecord(e.payload)) return { kind: "ignore" };
      const event = { id: String(e.id ?? ""), type: e.type, occurred_at: String(e.occurred_at ?? ""), payload: e.payload };
      return { kind: "event", family: message.family, shadow: message.shadow === true, event };
    }
    case "gap": // some events are gone: the REST state is the truth
      return { kind: "gap" };
    case "error": // unavailable, rate_limited, …: try again later; not_found, forbidden, …: never
      return message.code === "unavailable" || message.code === "rate_limited" || message.code === "too_many_subscriptions"
        ? { kind: "retry" }
        : { kind: "refused" };
    default:
      return { kind: "ignore" };
  }
}

/** Seconds to wait before the `attempt`-th reconnection (1, 2, 4 … up to 30). */
export function reconnectDelay(attempt: number): number {
  return Math.min(30, 2 ** Math.max(0, attempt - 1));
}

// -- shadow comparison -------------------------------------------------------------------------

export type Difference = { field: string; pushed: unknown; rest: unknown };

/** Equal as the server's parity checker counts it: numbers to 1e-9, absent and null alike. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) <= 1e-9 + 1e-9 * Math.max(Math.abs(a), Math.abs(b));
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  return a === b;
}

/** The fields both views have whose values differ (a view names fields as REST does). */
export function differences(pushed: Record<string, unknown>, rest: Record<string, unknown>): Difference[] {
  const out: Difference[] = [];
  for (const field of Object.keys(pushed))
    if (field in rest && !sameValue(pushed[field], rest[field])) out.push({ field, pushed: pushed[field], rest: rest[field] });
  return out;
}

/**
 * A push compared with REST data fetched after it arrived:
 * - `wait`: no such REST answer yet;
 * - `agree` / `differ`: compared, field by field;
 * - `moved_on`: REST is already past the push (a later bar, heartbeat or trade page);
 * - `unchecked`: the push states nothing the page's REST data shows (a fill, a sync conflict).
 */
export type Verdict = { kind: "wait" } | { kind: "agree" } | { kind: "differ"; differences: Difference[] } | { kind: "moved_on" } | { kind: "unchecked" };

export const verdictOf = (diffs: Difference[]): Verdict => (diffs.length === 0 ? { kind: "agree" } : { kind: "differ", differences: diffs });

export type FamilyStats = {
  pushed: number;
  applied: number;
  polled: number;
  agreed: number;
  differed: number;
  movedOn: number;
  unchecked: number;
  lastDifference: { at: number; type: string; differences: Difference[] } | null;
};

export const emptyStats = (): FamilyStats => ({
  pushed: 0,
  applied: 0,
  polled: 0,
  agreed: 0,
  differed: 0,
  movedOn: 0,
  unchecked: 0,
  lastDifference: null,
});

/** A REST answer by source name, with the time it arrived (ms, the page's clock). */
export type RestAnswers = Record<string, { data: unknown; at: number } | undefined>;

/** A shadow push waiting for a REST answer newer than itself. `check` reads the answers it needs. */
export type Pending = { family: Family; type: string; receivedAt: number; check: (fresh: Record<string, unknown>) => Verdict };

/**
 * A REST answer settles a push when it arrived at least this long after the push: one that
 * arrives sooner may have been asked before the event happened (the server's own parity check
 * waits a second too).
 */
export const REST_AFTER_MS = 1000;
/** A push waits this long for a REST answer after it; then it counts as unchecked. */
export const PENDING_MS = 120_000;
export const PENDING_MAX = 100;

export type Ledger = { stats: Partial<Record<Family, FamilyStats>>; pending: Pending[] };

export const emptyLedger = (): Ledger => ({ stats: {}, pending: [] });

function bump(ledger: Ledger, family: Family, change: (s: FamilyStats) => FamilyStats): Ledger {
  return { ...ledger, stats: { ...ledger.stats, [family]: change(ledger.stats[family] ?? emptyStats()) } };
}

/** A push arrived; `use` is what the page did with it (`pushUse`), `check` its comparison if any. */
export function recordPush(ledger: Ledger, family: Family, use: "apply" | "compare" | "ignore", pending?: Pending): Ledger {
  let next = bump(ledger, family, (s) => ({ ...s, pushed: s.pushed + 1, applied: s.applied + (use === "apply" ? 1 : 0) }));
  if (use === "compare" && pending) {
    const kept = next.pending.length >= PENDING_MAX ? next.pending.slice(1) : next.pending;
    next = { ...next, pending: [...kept, pending] };
  }
  return next;
}

/** A REST answer arrived for a source showing `families`. */
export function recordPoll(ledger: Ledger, families: readonly Family[]): Ledger {
  return families.reduce((l, f) => bump(l, f, (s) => ({ ...s, polled: s.polled + 1 })), ledger);
}

/** Compare the waiting pushes with the REST answers that arrived after each; drop the expired. */
export function settle(ledger: Ledger, answers: RestAnswers, now: number): Ledger {
  let next: Ledger = { ...ledger, pending: [] };
  for (const p of ledger.pending) {
    const fresh: Record<string, unknown> = {};
    for (const [name, answer] of Object.entries(answers)) if (answer !== undefined && answer.at >= p.receivedAt + REST_AFTER_MS) fresh[name] = answer.data;
    let verdict = p.check(fresh);
    if (verdict.kind === "wait" && now - p.receivedAt > PENDING_MS) verdict = { kind: "unchecked" };
    if (verdict.kind === "wait") {
      next.pending.push(p);
      continue;
    }
    const v = verdict;
    next = bump(next, p.family, (s) => ({
      ...s,
      agreed: s.agreed + (v.kind === "agree" ? 1 : 0),
      differed: s.differed + (v.kind === "differ" ? 1 : 0),
      movedOn: s.movedOn + (v.kind === "moved_on" ? 1 : 0),
      unchecked: s.unchecked + (v.kind === "unchecked" ? 1 : 0),
      lastDifference: v.kind === "differ" ? { at: now, type: p.type, differences: v.differences } : s.lastDifference,
    }));
  }
  return next;
}

/** Where a family's data on the page comes from now. */
export function shownFrom(mode: Mode | undefined, socket: SocketState): "pushes" | "REST" {
  return mode === "live" && socket === "subscribed" ? "pushes" : "REST";
}

/** One line for the page: what is pushed, what is polled and how often. */
export function liveNote(families: readonly Family[], modes: Modes | undefined, socket: SocketState, pollSeconds: number): string {
  if (socket === "connecting") return "connecting…";
  const polled = `refreshing every ${pollSeconds} s`;
  if (socket === "down") return `${polled} (no live connection)`;
  const pushed = families.filter((f) => shownFrom(modes?.[f], socket) === "pushes");
  if (pushed.length === 0) return `${polled} (WebSocket up, nothing live)`;
  if (pushed.length === families.length) return "live updates (WebSocket)";
  return `live: ${pushed.join(", ")}; ${polled} for the rest`;
}

/** A difference as the panel prints it. */
export function formatDifference(d: Difference): string {
  const show = (v: unknown) => (typeof v === "number" ? String(Number(v.toPrecision(10))) : JSON.stringify(v) ?? "—");
  return `${d.field}: pushed ${show(d.pushed)}, REST ${show(d.rest)}`;
}
