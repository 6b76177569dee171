import { describe, expect, it } from "vitest";
import { channelAction, reconnectDelay } from "./live";

const CH = "session:01J0000000000000000000000";

describe("channelAction", () => {
  it("refetches on the snapshot, an event or a gap of the channel", () => {
    expect(channelAction({ type: "snapshot", channel: CH, seq: 1, data: {} }, CH)).toBe("refetch");
    expect(channelAction({ type: "event", channel: CH, seq: 2, family: "account", shadow: true, event: {} }, CH)).toBe("refetch");
    expect(channelAction({ type: "gap", channel: CH, from: 3, to: 9 }, CH)).toBe("refetch");
  });
  it("notes the subscription and a refusal", () => {
    expect(channelAction({ type: "subscribed", channel: CH, seq: 1 }, CH)).toBe("subscribed");
    expect(channelAction({ type: "error", channel: CH, code: "not_found" }, CH)).toBe("refused");
    expect(channelAction({ type: "error", channel: CH, code: "forbidden" }, CH)).toBe("refused");
  });
  it("retries later when the service was unavailable or the socket subscribed too fast", () => {
    expect(channelAction({ type: "error", channel: CH, code: "unavailable" }, CH)).toBe("retry");
    expect(channelAction({ type: "error", channel: CH, code: "rate_limited" }, CH)).toBe("retry");
  });
  it("ignores other channels, the welcome, features and anything malformed", () => {
    expect(channelAction({ type: "event", channel: "session:OTHER" }, CH)).toBe("ignore");
    expect(channelAction({ type: "welcome", user_id: "u" }, CH)).toBe("ignore");
    expect(channelAction({ type: "features", features: {} }, CH)).toBe("ignore");
    expect(channelAction("pong", CH)).toBe("ignore");
    expect(channelAction(null, CH)).toBe("ignore");
  });
});

describe("reconnectDelay", () => {
  it("doubles from one second up to thirty", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(reconnectDelay)).toEqual([1, 2, 4, 8, 16, 30, 30, 30]);
  });
});
