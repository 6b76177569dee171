import { describe, expect, it } from "vitest";
import {
  cadence,
  differences,
  emptyLedger,
  liveNote,
  PENDING_MS,
  pushUse,
  readMessage,
  readModes,
  reconnectDelay,
  recordPoll,
  recordPush,
  refetchEvery,
  REST_AFTER_MS,
  settle,
  verdictOf,
  type Pending,
} from "./cutover";

const CH = "session:01J0000000000000000000000";
const session = { families: ["sessions", "account"] as const, complete: false };
const equity = { families: ["account"] as const, complete: true };

describe("readModes", () => {
  it("keeps known families with a known mode", () => {
    expect(readModes({ account: "live", positions: "shadow", nope: "live", orders: "sometimes" })).toEqual({ account: "live", positions: "shadow" });
    expect(readModes(null)).toEqual({});
  });
});

describe("cadence", () => {
  it("polls while a family is not live or the modes are unknown", () => {
    expect(cadence(equity, { account: "shadow" }, "subscribed")).toBe("poll");
    expect(cadence(equity, { account: "rest" }, "subscribed")).toBe("poll");
    expect(cadence(session, { sessions: "live", account: "shadow" }, "subscribed")).toBe("poll");
    expect(cadence(equity, undefined, "subscribed")).toBe("poll");
    expect(cadence(equity, {}, "subscribed")).toBe("poll");
  });
  it("stops polling what the pushes carry whole, and keeps a slow refresh for the rest", () => {
    expect(cadence(equity, { account: "live" }, "subscribed")).toBe("pushed");
    expect(cadence(session, { sessions: "live", account: "live" }, "subscribed")).toBe("safety");
  });
  it("polls whatever the modes while the socket is not subscribed, and what no family carries", () => {
    expect(cadence(equity, { account: "live" }, "down")).toBe("poll");
    expect(cadence(equity, { account: "live" }, "connecting")).toBe("poll");
    expect(cadence({ families: [], complete: true }, { account: "live" }, "subscribed")).toBe("poll");
  });
  it("gives the interval of each cadence", () => {
    expect([refetchEvery("poll", 5000, 30000), refetchEvery("safety", 5000, 30000), refetchEvery("pushed", 5000, 30000)]).toEqual([5000, 30000, false]);
  });
});

describe("pushUse", () => {
  it("shows live pushes, compares shadow ones and drops those of a family gone to rest", () => {
    expect(pushUse("live", false)).toBe("apply");
    expect(pushUse("live", true)).toBe("compare"); // the server still sent it as shadow
    expect(pushUse("shadow", true)).toBe("compare");
    expect(pushUse(undefined, false)).toBe("compare");
    expect(pushUse("rest", false)).toBe("ignore");
  });
});

describe("readMessage", () => {
  it("reads the modes of the welcome and of a features message, whatever the channel", () => {
    expect(readMessage({ type: "welcome", user_id: "u", features: { account: "live" } }, CH)).toEqual({ kind: "features", modes: { account: "live" } });
    expect(readMessage({ type: "features", features: { agents: "rest" } }, CH)).toEqual({ kind: "features", modes: { agents: "rest" } });
  });
  it("reads an event of the channel with its family and shadow flag", () => {
    const event = { id: "e1", type: "session.equity", occurred_at: "t", payload: { equity: 1 } };
    expect(readMessage({ type: "event", channel: CH, seq: 2, family: "account", shadow: true, event }, CH)).toEqual({
      kind: "event",
      family: "account",
      shadow: true,
      event,
    });
    expect(readMessage({ type: "event", channel: CH, family: "nope", event }, CH)).toEqual({ kind: "ignore" });
    expect(readMessage({ type: "event", channel: CH, family: "account", event: { type: "x" } }, CH)).toEqual({ kind: "ignore" });
  });
  it("notes the subscription, a snapshot, a gap, a refusal and a retry", () => {
    expect(readMessage({ type: "subscribed", channel: CH, seq: 1 }, CH).kind).toBe("subscribed");
    expect(readMessage({ type: "snapshot", channel: CH, data: { id: 1 } }, CH)).toEqual({ kind: "snapshot", data: { id: 1 } });
    expect(readMessage({ type: "gap", channel: CH, from: 3, to: 9 }, CH).kind).toBe("gap");
    expect(readMessage({ type: "error", channel: CH, code: "not_found" }, CH).kind).toBe("refused");
    expect(readMessage({ type: "error", channel: CH, code: "forbidden" }, CH).kind).toBe("refused");
    expect(readMessage({ type: "error", channel: CH, code: "unavailable" }, CH).kind).toBe("retry");
    expect(readMessage({ type: "error", channel: CH, code: "rate_limited" }, CH).kind).toBe("retry");
  });
  it("ignores other channels and anything malformed", () => {
    expect(readMessage({ type: "event", channel: "session:OTHER" }, CH).kind).toBe("ignore");
    expect(readMessage("pong", CH).kind).toBe("ignore");
    expect(readMessage(null, CH).kind).toBe("ignore");
  });
});

describe("reconnectDelay", () => {
  it("doubles from one second up to thirty", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(reconnectDelay)).toEqual([1, 2, 4, 8, 16, 30, 30, 30]);
  });
});

describe("differences", () => {
  it("compares the fields both have, numbers to 1e-9, absent and null alike", () => {
    expect(differences({ equity: 100.0000000001, cash: 5, only_pushed: 1, note: null }, { equity: 100, cash: 6, note: undefined, only_rest: 2 })).toEqual([
      { field: "cash", pushed: 5, rest: 6 },
    ]);
    expect(differences({ status: "paused" }, { status: "running" })).toEqual([{ field: "status", pushed: "paused", rest: "running" }]);
  });
});

describe("the shadow ledger", () => {
  const pending = (receivedAt: number, check: Pending["check"]): Pending => ({ family: "account", type: "session.equity", receivedAt, check });

  it("counts pushes, the ones shown, and the REST answers of each family", () => {
    let l = recordPush(emptyLedger(), "account", "apply");
    l = recordPush(l, "account", "ignore");
    l = recordPoll(l, ["sessions", "account"]);
    expect(l.stats.account).toMatchObject({ pushed: 2, applied: 1, polled: 1 });
    expect(l.stats.sessions).toMatchObject({ pushed: 0, polled: 1 });
    expect(l.pending).toEqual([]);
  });

  it("compares a push only with a REST answer that arrived after it, and records the differences", () => {
    const seen: unknown[] = [];
    const check: Pending["check"] = (fresh) => {
      seen.push(fresh);
      if (!("session" in fresh)) return { kind: "wait" };
      return verdictOf(differences({ equity: 101 }, fresh.session as Record<string, unknown>));
    };
    let l = recordPush(emptyLedger(), "account", "compare", pending(10_000, check));
    l = settle(l, { session: { data: { equity: 100 }, at: 10_000 + REST_AFTER_MS - 1 } }, 11_000);
    expect(l.pending).toHaveLength(1); // asked before the event, maybe: wait
    l = settle(l, { session: { data: { equity: 100 }, at: 10_000 + REST_AFTER_MS } }, 11_500);
    expect(l.pending).toHaveLength(0);
    expect(l.stats.account).toMatchObject({ differed: 1, agreed: 0 });
    expect(l.stats.account?.lastDifference).toEqual({ at: 11_500, type: "session.equity", differences: [{ field: "equity", pushed: 101, rest: 100 }] });
    expect(seen[0]).toEqual({});
  });

  it("counts agreements, moved-on and unchecked pushes, and gives up on a push REST never answers", () => {
    let l = recordPush(emptyLedger(), "account", "compare", pending(0, () => ({ kind: "agree" })));
    l = recordPush(l, "account", "compare", pending(0, () => ({ kind: "moved_on" })));
    l = recordPush(l, "account", "compare", pending(0, () => ({ kind: "unchecked" })));
    l = recordPush(l, "account", "compare", pending(0, () => ({ kind: "wait" })));
    l = settle(l, {}, 1);
    expect(l.stats.account).toMatchObject({ pushed: 4, agreed: 1, movedOn: 1, unchecked: 1, differed: 0 });
    expect(l.pending).toHaveLength(1);
    l = settle(l, {}, PENDING_MS + 1);
    expect(l.stats.account?.unchecked).toBe(2);
    expect(l.pending).toHaveLength(0);
  });
});

describe("liveNote", () => {
  const families = ["sessions", "account"] as const;
  it("says what is pushed and what is polled", () => {
    expect(liveNote(families, { sessions: "live", account: "live" }, "subscribed", 5)).toBe("live updates (WebSocket)");
    expect(liveNote(families, { sessions: "live", account: "shadow" }, "subscribed", 5)).toBe("live: sessions; refreshing every 5 s for the rest");
    expect(liveNote(families, { sessions: "shadow", account: "rest" }, "subscribed", 5)).toBe("refreshing every 5 s (WebSocket up, nothing live)");
    expect(liveNote(families, { sessions: "live", account: "live" }, "down", 5)).toBe("refreshing every 5 s (no live connection)");
    expect(liveNote(families, undefined, "connecting", 5)).toBe("connecting…");
  });
});
