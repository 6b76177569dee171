/** An agent-mode session's terminal account as rows of the trades table. */
import type { components } from "../api/schema";
import type { TradeRow } from "../backtests/TradesTable";

export type TerminalView = components["schemas"]["TerminalPublic"];
type Summary = components["schemas"]["TerminalSummary"];

/** How far a terminal account has moved: each ack that ended an order, each deal of the
 * terminal's own recorded from a sync. Equal counts, the same account. */
export const terminalMoves = (t: Summary): number => t.orders.executed + t.orders.refused + t.deals;

/** The closed trades in order, then the open tickets marked at ``mark`` (the last close; the
 * open price without one). As the trades table reads them: ``pnl`` net of the costs, ``fees``
 * what the terminal charged (its costs negated: a credited swap is a negative fee). */
export function terminalRows(view: TerminalView): TradeRow[] {
  const mark = view.account.mark;
  const closed = view.trades.map(
    (t): TradeRow => ({
      side: t.side,
      entry_time: t.entry_time,
      entry_price: t.entry_price,
      exit_time: t.exit_time,
      exit_price: t.exit_price,
      exit_reason: t.closed_by === "order" ? `ticket ${t.ticket}: the session's exit` : `ticket ${t.ticket}: the terminal${t.deal ? ` (deal ${t.deal})` : ""}`,
      quantity: t.volume,
      pnl: t.pnl + t.costs,
      fees: -t.costs,
    }),
  );
  const open = view.open.map((t): TradeRow => {
    const price = mark ?? t.price;
    return {
      side: t.side,
      entry_time: t.entry_time,
      entry_price: t.price,
      exit_time: "",
      exit_price: price,
      exit_reason: `ticket ${t.ticket}`,
      quantity: t.volume,
      pnl: (t.side === "long" ? 1 : -1) * t.volume * (price - t.price),
      fees: 0,
      is_open: true,
    };
  });
  return [...closed, ...open];
}
