/**
 * One backtest: its status and progress while it runs (polled), then its results: the candles
 * with the trades' fills, the equity and drawdown curves, the metrics and the trades.
 * Loaded lazily (it brings the charting library).
 */
import { useMemo } from "react";
import { PriceChart, ValueChart, type Candle } from "../charts/Charts";
import { toSeconds, tradeMarkers } from "../charts/series";
import { Link } from "../router";
import { ErrorBox, Loading, PageLoadError } from "../ui/ErrorBox";
import { ProgressBar, StatusBadge } from "../ui/Status";
import { summaryMetrics } from "./metrics";
import { JobFacts } from "./JobFacts";
import { MetricsTable } from "./MetricsTable";
import { TradesTable } from "./TradesTable";
import { isActive, MAX_BARS, useBars, useCancelJob, useEquity, useJob, useJobTrades, type Job } from "./queries";

/** Up to this many trades, each marker names its price; beyond, arrows only. */
const MARKER_LABELS = 12;

export default function BacktestPage({ jobId }: { jobId: string }) {
  const job = useJob(jobId);
  const cancel = useCancelJob();
  if (job.error)
    return <PageLoadError error={job.error} retry={job.refetch} back={<Link to="/backtests">Back to your backtests</Link>} />;
  if (job.isPending) return <Loading what="the backtest" />;
  const j = job.data;
  if (j.kind === "sweep") {
    return (
      <div className="page">
        This job is a sweep: <Link to={`/backtests/sweeps/${j.id}`}>open it as one</Link>.
      </div>
    );
  }
  return (
    <div className="page page-wide">
      <div className="section-head">
        <h1>
          Backtest <span className="muted small">{j.id}</span>
        </h1>
        <StatusBadge status={j.status} />
        {isActive(j.status) && <ProgressBar value={j.progress} />}
        {isActive(j.status) && (
          <button type="button" className="danger" disabled={cancel.isPending} onClick={() => cancel.mutate(j)} data-testid="cancel-run">
            Cancel
          </button>
        )}
        {j.status === "completed" && (
          <Link to={`/analytics/backtests/${j.id}`} data-testid="tear-sheet-link">
            Tear sheet
          </Link>
        )}
        {j.strategy_id && (
          <Link to={`/backtests/new?strategy=${j.strategy_id}${j.version !== null ? `&version=${j.version}` : ""}`}>Run again…</Link>
        )}
      </div>
      <JobFacts job={j} />
      {cancel.error && <ErrorBox error={cancel.error} />}
      {j.status === "failed" && (
        <div className="error-box" role="alert">
          <strong>The backtest failed</strong>
          <div>{j.error ?? "no reason was recorded"}</div>
        </div>
      )}
      {j.status === "cancelled" && <p className="muted">Cancelled: there are no results.</p>}
      {isActive(j.status) && <p className="muted">{j.status === "queued" ? "Waiting for a worker…" : "Running…"} This page updates by itself.</p>}
      {j.status === "completed" && <Results job={j} />}
    </div>
  );
}

function Results({ job }: { job: Job }) {
  const equity = useEquity(job.id, true);
  const trades = useJobTrades(job.id, true);
  const bars = useBars(job.symbol, job.timeframe, job.start, job.end);

  const candles = useMemo<Candle[]>(
    () => (bars.data?.bars ?? []).map((b) => ({ time: toSeconds(b.ts), open: b.open, high: b.high, low: b.low, close: b.close })),
    [bars.data],
  );
  const markers = useMemo(
    () =>
      trades.data && candles.length > 0
        ? tradeMarkers(trades.data.trades, candles.map((c) => c.time), { labels: trades.data.trades.length <= MARKER_LABELS })
        : [],
    [trades.data, candles],
  );
  const equityPoints = useMemo(() => (equity.data?.points ?? []).map((p) => ({ time: toSeconds(p.ts), value: p.equity })), [equity.data]);
  const drawdownPoints = useMemo(() => (equity.data?.points ?? []).map((p) => ({ time: toSeconds(p.ts), value: p.drawdown })), [equity.data]);

  return (
    <div className="results">
      <section className="metrics-and-price">
        <div>
          <h2>Metrics</h2>
          <MetricsTable summary={summaryMetrics(job.summary)} />
        </div>
        <div>
          <h2>
            Price and trades <span className="muted small">UTC</span>
          </h2>
          {bars.error && <ErrorBox error={bars.error} onRetry={() => void bars.refetch()} />}
          {trades.error && <ErrorBox error={trades.error} onRetry={() => void trades.refetch()} />}
          {bars.isPending ? <Loading what="the bars" /> : <PriceChart candles={candles} markers={markers} label={`${job.symbol} candles with trades`} />}
          {bars.data?.truncated && <p className="muted small">The first {MAX_BARS.toLocaleString()} bars are drawn.</p>}
        </div>
      </section>
      <section className="chart-pair">
        <div>
          <h2>Equity</h2>
          {equity.error && <ErrorBox error={equity.error} onRetry={() => void equity.refetch()} />}
          {equity.isPending ? <Loading what="the equity curve" /> : <ValueChart points={equityPoints} kind="equity" label="Equity curve" testId="equity-chart" />}
        </div>
        <div>
          <h2>Drawdown</h2>
          {equity.isPending ? <Loading what="the drawdown" /> : <ValueChart points={drawdownPoints} kind="drawdown" label="Drawdown" testId="drawdown-chart" />}
        </div>
      </section>
      {equity.data && equity.data.method === "lttb" && (
        <p className="muted small">
          {equity.data.points.length.toLocaleString()} of {equity.data.total_points.toLocaleString()} points, chosen to keep peaks and troughs.
        </p>
      )}
      <section>
        <h2>Trades {trades.data && <span className="muted small">{trades.data.total.toLocaleString()}</span>}</h2>
        {trades.isPending ? <Loading what="the trades" /> : trades.data && <TradesTable trades={trades.data.trades} total={trades.data.total} />}
      </section>
    </div>
  );
}
