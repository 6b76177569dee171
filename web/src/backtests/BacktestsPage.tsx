/** Your backtests and sweeps, newest first; the running ones refresh on their own. */
import { useState } from "react";
import { Link, navigate } from "../router";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { ProgressBar, StatusBadge } from "../ui/Status";
import { lastDay } from "./form";
import { formatMetric, summaryMetrics } from "./metrics";
import { isActive, useJobs, type Job } from "./queries";

export function jobPath(job: Pick<Job, "id" | "kind">): string {
  return job.kind === "sweep" ? `/backtests/sweeps/${job.id}` : `/backtests/${job.id}`;
}

export function BacktestsPage() {
  const [kind, setKind] = useState<"" | "backtest" | "sweep">("");
  const jobs = useJobs(kind || undefined);
  return (
    <div className="page">
      <div className="section-head">
        <h1>Backtests</h1>
        <select aria-label="Kind" value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
          <option value="">backtests and sweeps</option>
          <option value="backtest">backtests</option>
          <option value="sweep">sweeps</option>
        </select>
        <button type="button" onClick={() => navigate("/backtests/sweeps/new")}>
          New sweep
        </button>
        <button type="button" className="primary" onClick={() => navigate("/backtests/new")}>
          New backtest
        </button>
      </div>
      {jobs.error && <ErrorBox error={jobs.error} onRetry={() => void jobs.refetch()} />}
      {jobs.isPending ? (
        <Loading what="backtests" />
      ) : jobs.data && jobs.data.items.length === 0 ? (
        <p className="muted">No backtests yet: start one from a strategy with “New backtest”.</p>
      ) : (
        jobs.data && (
          <table className="table" data-testid="backtests-table">
            <thead>
              <tr>
                <th>Run</th>
                <th>Symbol</th>
                <th>Range (UTC)</th>
                <th>Status</th>
                <th title="a sweep: its best combination">Return</th>
                <th>Sharpe</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.items.map((job) => (
                <tr key={job.id}>
                  <td>
                    <Link to={jobPath(job)}>
                      {job.kind === "sweep" ? `Sweep of ${job.combinations.toLocaleString()}` : "Backtest"}
                    </Link>
                    <div className="muted small">
                      <code>{job.id}</code>
                      {job.version !== null && ` · v${job.version}`}
                    </div>
                  </td>
                  <td>
                    {job.symbol} <span className="muted">{job.timeframe}</span>
                  </td>
                  <td className="small">
                    {job.start.slice(0, 10)} → {lastDay(job.end)}
                  </td>
                  <td>
                    <StatusBadge status={job.status} testId={`status-${job.id}`} />
                    {isActive(job.status) && <ProgressBar value={job.progress} />}
                  </td>
                  <td>{job.status === "completed" ? formatMetric("total_return", summaryMetrics(job.summary)?.total_return) : ""}</td>
                  <td>{job.status === "completed" ? formatMetric("sharpe", summaryMetrics(job.summary)?.sharpe) : ""}</td>
                  <td className="small">{new Date(job.created_at).toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
      {jobs.data?.next_cursor && <p className="muted">Showing the newest {jobs.data.items.length}.</p>}
    </div>
  );
}
