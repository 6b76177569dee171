/**
 * One sweep: status and progress while it runs (polled), the combinations ranked by a metric
 * (listed while chunks are stored), a heatmap of a metric over two swept parameters, and a
 * backtest of any combination in one click (to see its trades and curves).
 */
import { useMemo, useState } from "react";
import { Link, navigate } from "../router";
import { ErrorBox, Loading, PageLoadError } from "../ui/ErrorBox";
import { ProgressBar, StatusBadge } from "../ui/Status";
import { JobFacts } from "./JobFacts";
import { cellColour, heatmapMatrix, sweptParameters } from "./heatmap";
import { formatMetric, metricLabel } from "./metrics";
import { MetricOptions } from "./MetricOptions";
import { walkForwardReport } from "./walkforward";
import {
  isActive,
  useCancelJob,
  useSubmitBacktest,
  useSweep,
  useSweepResults,
  type BacktestConfig,
  type Job,
  type SweepResult,
} from "./queries";

const RESULT_COLUMNS = ["sharpe", "total_return", "max_drawdown", "trade_count", "win_rate", "profit_factor"];

export default function SweepPage({ jobId }: { jobId: string }) {
  const sweep = useSweep(jobId);
  const cancel = useCancelJob();
  const [sort, setSort] = useState<string | null>(null);
  const job = sweep.data;
  const metric = sort ?? (typeof job?.summary?.metric === "string" ? job.summary.metric : "sharpe");
  const results = useSweepResults(jobId, metric, job !== undefined && job.status !== "queued", isActive(job?.status));

  if (sweep.error)
    return <PageLoadError error={sweep.error} retry={sweep.refetch} back={<Link to="/backtests">Back to your backtests</Link>} />;
  if (sweep.isPending || job === undefined) return <Loading what="the sweep" />;
  return (
    <div className="page page-wide">
      <div className="section-head">
        <h1>
          Sweep <span className="muted small">{job.id}</span>
        </h1>
        <StatusBadge status={job.status} />
        {isActive(job.status) && <ProgressBar value={job.progress} />}
        {isActive(job.status) && (
          <button type="button" className="danger" disabled={cancel.isPending} onClick={() => cancel.mutate(job)} data-testid="cancel-run">
            Cancel
          </button>
        )}
      </div>
      <JobFacts job={job} />
      <p className="muted">
        {job.combinations.toLocaleString()} combinations in {job.chunks_total} chunks, {job.chunks_done} stored.
      </p>
      {cancel.error && <ErrorBox error={cancel.error} />}
      {job.status === "failed" && (
        <div className="error-box" role="alert">
          <strong>The sweep failed</strong>
          <div>{job.error ?? "no reason was recorded"}</div>
        </div>
      )}
      {results.error && <ErrorBox error={results.error} onRetry={() => void results.refetch()} />}
      {job.status === "queued" && <p className="muted">Waiting for a worker… This page updates by itself.</p>}
      {results.isLoading && <Loading what="the results" />}
      {results.data && results.data.results.length > 0 && (
        <>
          <Heatmap results={results.data.results} initialMetric={metric} />
          <section>
            <div className="section-head">
              <h2>Ranked</h2>
              <label>
                Rank by{" "}
                <select aria-label="Rank by" value={metric} onChange={(e) => setSort(e.target.value)}>
                  <MetricOptions />
                </select>
              </label>
            </div>
            <RankedTable job={job} results={results.data.results} />
            {results.data.total > results.data.results.length && (
              <p className="muted small">
                The best {results.data.results.length.toLocaleString()} of {results.data.total.toLocaleString()} combinations (the heatmap shows these too).
              </p>
            )}
          </section>
        </>
      )}
      {results.data && results.data.results.length === 0 && !isActive(job.status) && <p className="muted">No results.</p>}
      <WalkForward summary={job.summary} />
    </div>
  );
}

/** Per fold: the combination that was best on the train bars, and how it did on the test bars. */
function WalkForward({ summary }: { summary: Record<string, unknown> | null | undefined }) {
  const report = walkForwardReport(summary);
  if (report === null) return null;
  const params = [...new Set(report.folds.flatMap((f) => Object.keys(f.best?.params ?? {})))].sort();
  return (
    <section>
      <h2>Walk-forward</h2>
      <p className="muted">
        Each fold picks the best combination by {metricLabel(report.metric)} on its train bars and runs it on the test bars that
        follow. Out-of-sample return, compounded over the test windows:{" "}
        <b data-testid="walk-forward-oos">{formatMetric("total_return", report.outOfSampleReturn)}</b>
      </p>
      <div className="table-scroll">
        <table className="table" data-testid="walk-forward-table" aria-label="Walk-forward folds">
          <thead>
            <tr>
              <th>Fold</th>
              <th>Train bars</th>
              <th>Test bars</th>
              {params.map((p) => (
                <th key={p}>{p}</th>
              ))}
              <th className="num">Train {metricLabel(report.metric)}</th>
              <th className="num">Test return</th>
              <th className="num">Test sharpe</th>
              <th className="num">Test trades</th>
            </tr>
          </thead>
          <tbody>
            {report.folds.map((f) => (
              <tr key={f.fold}>
                <td>{f.fold + 1}</td>
                <td>
                  {f.train[0]}–{f.train[1] - 1}
                </td>
                <td>
                  {f.test[0]}–{f.test[1] - 1}
                </td>
                {f.best === null ? (
                  <td colSpan={params.length + 4} className="muted">
                    no combination had a {metricLabel(report.metric)} on the train bars
                  </td>
                ) : (
                  <>
                    {params.map((p) => (
                      <td key={p}>{f.best!.params[p] ?? "—"}</td>
                    ))}
                    <td className="num">{formatMetric(report.metric, f.best.train)}</td>
                    <td className="num">{formatMetric("total_return", f.best.test.total_return)}</td>
                    <td className="num">{formatMetric("sharpe", f.best.test.sharpe)}</td>
                    <td className="num">{formatMetric("trade_count", f.best.test.trade_count)}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function RankedTable({ job, results }: { job: Job; results: SweepResult[] }) {
  const params = useMemo(() => [...new Set(results.flatMap((r) => Object.keys(r.params)))].sort(), [results]);
  const backtest = useSubmitBacktest();
  const run = (r: SweepResult) =>
    backtest.mutate(
      {
        strategy_id: job.strategy_id,
        version: job.version,
        symbol: job.symbol,
        timeframe: job.timeframe,
        start: job.start,
        end: job.end,
        config: job.config as BacktestConfig,
        params: r.params,
      },
      { onSuccess: (created) => navigate(`/backtests/${created.id}`) },
    );
  return (
    <>
      {backtest.error && <ErrorBox error={backtest.error} />}
      <div className="table-scroll">
        <table className="table" data-testid="sweep-results-table" aria-label="Ranked combinations">
          <thead>
            <tr>
              <th>Rank</th>
              {params.map((p) => (
                <th key={p}>
                  <code>{p}</code>
                </th>
              ))}
              {RESULT_COLUMNS.map((m) => (
                <th key={m} className="num">
                  {metricLabel(m)}
                </th>
              ))}
              <th />
            </tr>
          </thead>
          <tbody>
            {results.slice(0, 200).map((r) => (
              <tr key={r.index}>
                <td>{r.rank}</td>
                {params.map((p) => (
                  <td key={p}>{r.params[p]}</td>
                ))}
                {RESULT_COLUMNS.map((m) => (
                  <td key={m} className="num">
                    {formatMetric(m, r.metrics[m])}
                  </td>
                ))}
                <td>
                  <button type="button" disabled={backtest.isPending || job.strategy_id === null} onClick={() => run(r)}>
                    Backtest this
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {results.length > 200 && <p className="muted small">The table lists the first 200.</p>}
    </>
  );
}

function Heatmap({ results, initialMetric }: { results: SweepResult[]; initialMetric: string }) {
  const swept = useMemo(() => sweptParameters(results), [results]);
  const [x, setX] = useState<string | null>(null);
  const [y, setY] = useState<string | null>(null);
  const [metric, setMetric] = useState(initialMetric);
  const xName = x ?? swept[0];
  const yName = y ?? swept.find((p) => p !== xName);
  const map = useMemo(
    () => (xName && yName ? heatmapMatrix(results, xName, yName, metric) : null),
    [results, xName, yName, metric],
  );
  if (swept.length < 2 || map === null || !xName || !yName)
    return <p className="muted">A heatmap needs two parameters that vary; this sweep varies {swept.length === 1 ? "one" : "none"}.</p>;
  return (
    <section>
      <div className="section-head">
        <h2>Heatmap</h2>
        <label>
          columns{" "}
          <select aria-label="Heatmap columns" value={xName} onChange={(e) => setX(e.target.value)}>
            {swept.map((p) => (
              <option key={p} value={p} disabled={p === yName}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          rows{" "}
          <select aria-label="Heatmap rows" value={yName} onChange={(e) => setY(e.target.value)}>
            {swept.map((p) => (
              <option key={p} value={p} disabled={p === xName}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          metric{" "}
          <select aria-label="Heatmap metric" value={metric} onChange={(e) => setMetric(e.target.value)}>
            <MetricOptions />
          </select>
        </label>
      </div>
      {swept.length > 2 && <p className="muted small">Where the other parameters vary, a cell shows the best of them.</p>}
      <div className="table-scroll">
        <table className="heatmap" data-testid="sweep-heatmap" aria-label={`${metricLabel(metric)} by ${xName} and ${yName}`}>
          <thead>
            <tr>
              <th className="heatmap-corner">
                {yName} ↓ / {xName} →
              </th>
              {map.xs.map((v) => (
                <th key={v}>{v}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {map.ys.map((yv, i) => (
              <tr key={yv}>
                <th>{yv}</th>
                {map.cells[i]!.map((v, j) => (
                  <td
                    key={j}
                    style={{ background: cellColour(v, map.min, map.max, metric) }}
                    title={`${xName} ${map.xs[j]}, ${yName} ${yv}: ${formatMetric(metric, v)}`}
                  >
                    {formatMetric(metric, v)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
