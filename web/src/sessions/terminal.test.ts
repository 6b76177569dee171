import { describe, expect, it } from "vitest";
import { terminalMoves, terminalRows, type TerminalView } from "./terminal";

const T0 = "2024-01-01T00:00:00Z";
const T1 = "2024-01-01T04:00:00Z";

const TRADE: TerminalView["trades"][number] = {
  ticket: "P1",
  side: "long",
  volume: 0.5,
  entry_price: 100,
  exit_price: 104,
  pnl: 2,
  costs: -0.6,
  entry_seq: 0,
  exit_seq: null,
  deal: "D1",
  entry_time: T0,
  exit_time: T1,
  closed_by: "terminal",
};

/** The rows of ``v``, exactly two: the closed trade and the open ticket. */
function twoRows(v: TerminalView) {
  const rows = terminalRows(v);
  expect(rows).toHaveLength(2);
  const [closed, open] = rows as [(typeof rows)[number], (typeof rows)[number]];
  return { closed, open };
}

function view(over: Partial<TerminalView> = {}): TerminalView {
  return {
    session_id: "S",
    model: { position: 0, cash: 10_000, equity: 10_000 },
    account: {
      position: 1.5,
      cash: 0,
      equity: 0,
      realized_pnl: 0,
      costs: -2.6,
      mark: 110,
      open_tickets: 1,
      trades: 1,
      deals: 1,
      orders: { executed: 1, refused: 0, pending: 0 },
    },
    trades: [TRADE],
    open: [{ ticket: "P1", side: "long", volume: 1.5, opened: 2, price: 100, entry_seq: 0, entry_time: T0 }],
    ...over,
  };
}

describe("terminalRows", () => {
  it("lists the closed trades net of their costs, then the open tickets marked at the last close", () => {
    const { closed, open } = twoRows(view());
    expect(closed).toMatchObject({ quantity: 0.5, pnl: 1.4, fees: 0.6, exit_reason: "ticket P1: the terminal (deal D1)" });
    expect(closed.pnl).toBeCloseTo(2 - 0.6);
    expect(open).toMatchObject({ is_open: true, quantity: 1.5, exit_price: 110, pnl: 15, fees: 0 });
  });

  it("marks a short at the open price when there is no close yet, and names the session's exits", () => {
    const v = view({
      account: { ...view().account, mark: null },
      open: [{ ticket: "S1", side: "short", volume: 2, opened: 2, price: 50, entry_seq: 2, entry_time: T0 }],
      trades: [{ ...TRADE, closed_by: "order", deal: null, exit_seq: 1 }],
    });
    const { closed, open } = twoRows(v);
    expect(closed.exit_reason).toBe("ticket P1: the session's exit");
    expect(open.exit_price).toBe(50);
    expect(Math.abs(open.pnl)).toBe(0);
  });

  it("counts the moves of an account: ended orders and deals", () => {
    expect(terminalMoves(view().account)).toBe(2);
  });
});
