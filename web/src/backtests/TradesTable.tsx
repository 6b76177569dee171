/** Closed (and open) trades, as the backtest and session pages list them. */
import { formatPrice } from "../charts/series";

export interface TradeRow {
  side: "long" | "short";
  entry_time: string;
  entry_price: number;
  exit_time: string;
  exit_price: number;
  exit_reason: string;
  quantity: number;
  pnl: number;
  fees: number;
  /** net P&L in percent of the entry notional (already a percentage) */
  return_pct?: number;
  bars_held?: number;
  is_open?: boolean;
}

const utc = (iso: string) => iso.replace("T", " ").slice(0, 16);

export function TradesTable({ trades, total, testId = "trades-table" }: { trades: TradeRow[]; total: number; testId?: string }) {
  if (trades.length === 0) return <p className="muted">No trades.</p>;
  const returns = trades.some((t) => t.return_pct !== undefined);
  return (
    <>
      <div className="table-scroll">
        <table className="table trades-table" data-testid={testId} aria-label="Trades">
          <thead>
            <tr>
              <th>#</th>
              <th>Side</th>
              <th>Entry (UTC)</th>
              <th className="num">Entry price</th>
              <th>Exit (UTC)</th>
              <th className="num">Exit price</th>
              <th className="num">Quantity</th>
              <th className="num">P&amp;L</th>
              {returns && <th className="num">Return</th>}
              <th className="num">Fees</th>
              <th>Exit reason</th>
            </tr>
          </thead>
          <tbody>
            {trades.map((t, i) => (
              <tr key={i}>
                <td>{i + 1}</td>
                <td>{t.side}</td>
                <td>{utc(t.entry_time)}</td>
                <td className="num">{formatPrice(t.entry_price)}</td>
                <td>{t.is_open ? <em>open</em> : utc(t.exit_time)}</td>
                <td className="num">{formatPrice(t.exit_price)}</td>
                <td className="num">{Number(t.quantity.toPrecision(6))}</td>
                <td className={`num ${t.pnl >= 0 ? "gain" : "loss"}`}>{t.pnl.toFixed(2)}</td>
                {returns && <td className="num">{t.return_pct === undefined ? "" : `${t.return_pct.toFixed(2)} %`}</td>}
                <td className="num">{t.fees.toFixed(2)}</td>
                <td>{t.exit_reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {total > trades.length && (
        <p className="muted small">
          The first {trades.length.toLocaleString()} of {total.toLocaleString()} trades.
        </p>
      )}
    </>
  );
}
