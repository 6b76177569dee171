/** Your live (paper) sessions, newest first; running ones refresh on their own. */
import { useState } from "react";
import { Link, navigate } from "../router";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { StatusBadge } from "../ui/Status";
import { useSessions, type LiveSession } from "./queries";

export function formatMoney(v: number): string {
  return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function SessionsPage() {
  const [status, setStatus] = useState<"" | LiveSession["status"]>("");
  const sessions = useSessions(status || undefined);
  return (
    <div className="page">
      <div className="section-head">
        <h1>Live sessions</h1>
        <select aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
          <option value="">any status</option>
          <option value="running">running</option>
          <option value="paused">paused</option>
          <option value="stopped">stopped</option>
          <option value="failed">failed</option>
        </select>
        <button type="button" className="primary" onClick={() => navigate("/sessions/new")}>
          New session
        </button>
      </div>
      {sessions.error && <ErrorBox error={sessions.error} onRetry={() => void sessions.refetch()} />}
      {sessions.isPending ? (
        <Loading what="sessions" />
      ) : sessions.data && sessions.data.items.length === 0 ? (
        <p className="muted">No sessions{status ? ` ${status}` : ""}: start one from a strategy with “New session”.</p>
      ) : (
        sessions.data && (
          <table className="table" data-testid="sessions-table">
            <thead>
              <tr>
                <th>Session</th>
                <th>Symbol</th>
                <th>Status</th>
                <th className="num">Position</th>
                <th className="num">Equity</th>
                <th className="num">P&amp;L</th>
                <th>Last bar (UTC)</th>
              </tr>
            </thead>
            <tbody>
              {sessions.data.items.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link to={`/sessions/${s.id}`}>
                      <code>{s.id}</code>
                    </Link>
                    <div className="muted small">
                      {s.mode}
                      {s.version !== null && ` · v${s.version}`}
                    </div>
                  </td>
                  <td>
                    {s.symbol} <span className="muted">{s.timeframe}</span>
                  </td>
                  <td>
                    <StatusBadge status={s.status} testId={`status-${s.id}`} />
                  </td>
                  <td className="num">{Number(s.position.toPrecision(6))}</td>
                  <td className="num">{formatMoney(s.equity)}</td>
                  <td className={`num ${s.equity >= s.capital ? "gain" : "loss"}`}>{formatMoney(s.equity - s.capital)}</td>
                  <td className="small">{s.last_bar_time ? s.last_bar_time.replace("T", " ").slice(0, 16) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
      {sessions.data?.next_cursor && <p className="muted">Showing the newest {sessions.data.items.length}.</p>}
    </div>
  );
}
