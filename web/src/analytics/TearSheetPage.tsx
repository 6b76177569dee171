/**
 * The tear sheet of a backtest, a session or a portfolio (`/api/analytics/...`): metrics,
 * equity and drawdown, rolling Sharpe, monthly returns, VaR/CVaR, the deepest drawdowns,
 * trades; for a portfolio also its members, their correlation and the exposure by symbol. The
 * same report as a self-contained HTML file can be saved. Loaded lazily (charts).
 */
import { useMutation } from "@tanstack/react-query";
import { useApi } from "../auth/session";
import { MetricsTable } from "../backtests/MetricsTable";
import { formatMetric } from "../backtests/metrics";
import { ValueChart } from "../charts/Charts";
import { Link } from "../router";
import { ErrorBox, Loading, PageLoadError } from "../ui/ErrorBox";
import { downloadHtmlReport, useReport, type ReportKind } from "./queries";
import { monthlyGrid, percent, returnColour, utcDay, type Report } from "./report";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function runPath(kind: ReportKind, id: string): string {
  return kind === "backtest" ? `/backtests/${id}` : kind === "session" ? `/sessions/${id}` : "/analytics/portfolios";
}

export default function TearSheetPage({ kind, id }: { kind: ReportKind; id: string }) {
  const api = useApi();
  const report = useReport(kind, id);
  const html = useMutation({ mutationFn: () => downloadHtmlReport(api, kind, id) });
  const back = <Link to={runPath(kind, id)}>{kind === "portfolio" ? "Back to your portfolios" : `Back to the ${kind}`}</Link>;
  if (report.error)
    return <PageLoadError error={report.error} retry={report.refetch} back={back} />;
  if (report.isPending) return <Loading what="the tear sheet (it is computed when asked)" />;
  const r = report.data;
  return (
    <div className="page page-wide" data-testid="tear-sheet">
      <div className="section-head">
        <h1>
          {r.title} <span className="muted small">{r.subtitle}</span>
        </h1>
        <button type="button" onClick={() => html.mutate()} disabled={html.isPending} data-testid="download-html-report">
          {html.isPending ? "Preparing…" : "Save HTML report"}
        </button>
        {back}
      </div>
      <p className="facts">
        <span>
          {r.period.start?.slice(0, 10) ?? "—"} → {r.period.end?.slice(0, 10) ?? "—"} <span className="muted">UTC</span>
        </span>
        <span>
          {r.period.bars.toLocaleString()} bars of {r.period.timeframe}
        </span>
        {typeof r.conventions.calendar === "string" && <span>calendar {r.conventions.calendar}</span>}
        <span>benchmark {typeof r.conventions.benchmark === "string" ? r.conventions.benchmark : "none"}</span>
        {typeof r.conventions.weighting === "string" && <span>weighting {r.conventions.weighting}</span>}
      </p>
      {html.error && <ErrorBox error={html.error} />}
      {typeof r.conventions.benchmark_note === "string" && <p className="muted small">{r.conventions.benchmark_note}</p>}
      {r.coverage && !r.coverage.complete && (
        <p className="muted" data-testid="report-coverage">
          {r.coverage.points.toLocaleString()} of {r.coverage.expected.toLocaleString()} points have reached analytics: some are still on their way.
        </p>
      )}
      <section className="metrics-and-price">
        <div>
          <h2>Metrics</h2>
          <MetricsTable summary={r.metrics} />
        </div>
        <div>
          <h2>
            Equity <span className="muted small">UTC</span>
          </h2>
          <ValueChart points={r.equity} kind="equity" label="Equity curve" testId="report-equity-chart" />
          {r.benchmark.length > 0 && (
            <>
              <h2>Benchmark (buy and hold, same capital)</h2>
              <ValueChart points={r.benchmark} kind="equity" label="Benchmark curve" testId="report-benchmark-chart" />
            </>
          )}
        </div>
      </section>
      <section className="chart-pair">
        <div>
          <h2>Drawdown</h2>
          <ValueChart points={r.drawdown} kind="drawdown" label="Drawdown" testId="report-drawdown-chart" />
        </div>
        <div>
          <h2>
            Rolling Sharpe {r.rollingWindow !== null && <span className="muted small">{r.rollingWindow} bars</span>}
          </h2>
          <ValueChart points={r.rollingSharpe} kind="equity" label="Rolling Sharpe" testId="report-rolling-sharpe-chart" />
        </div>
      </section>
      {r.members.length > 0 && <Members report={r} />}
      <Monthly report={r} />
      <section className="two-columns">
        <div>
          <h2>Value at risk</h2>
          <VarTable report={r} />
        </div>
        <div>
          <h2>Deepest drawdowns</h2>
          <Drawdowns report={r} />
        </div>
      </section>
      <section className="two-columns">
        <div>
          <h2>Trades</h2>
          {r.trades ? <MetricsTable summary={r.trades} /> : <p className="muted">No trades.</p>}
        </div>
        <div>
          <h2>Beta {r.beta && typeof r.beta.benchmark === "string" && <span className="muted small">against {r.beta.benchmark}</span>}</h2>
          {r.beta ? <MetricsTable summary={r.beta} /> : <p className="muted">No benchmark.</p>}
          <h2>Returns per bar</h2>
          <Histogram report={r} />
        </div>
      </section>
    </div>
  );
}

function Monthly({ report }: { report: Report }) {
  const grid = monthlyGrid(report.monthly);
  return (
    <section>
      <h2>Monthly returns</h2>
      {grid.length === 0 ? (
        <p className="muted">No full month yet.</p>
      ) : (
        <table className="heatmap monthly" data-testid="monthly-returns" aria-label="Monthly returns">
          <thead>
            <tr>
              <th className="heatmap-corner">UTC</th>
              {MONTHS.map((m) => (
                <th key={m}>{m}</th>
              ))}
              <th>Year</th>
            </tr>
          </thead>
          <tbody>
            {grid.map((row) => (
              <tr key={row.year}>
                <th>{row.year}</th>
                {row.months.map((v, i) => (
                  <td key={i} style={{ background: returnColour(v) }}>
                    {v === null ? "" : percent(v, 1)}
                  </td>
                ))}
                <td style={{ background: returnColour(row.year_return) }}>
                  <strong>{percent(row.year_return, 1)}</strong>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function VarTable({ report }: { report: Report }) {
  if (report.varRows.length === 0) return <p className="muted">Too few bars to estimate.</p>;
  return (
    <table className="table metrics-table" data-testid="var-table">
      <thead>
        <tr>
          <th>Method</th>
          <th className="num">Confidence</th>
          <th className="num">Horizon (bars)</th>
          <th className="num">VaR</th>
          <th className="num">CVaR</th>
        </tr>
      </thead>
      <tbody>
        {report.varRows.map((v, i) => (
          <tr key={i}>
            <td>{v.method.replace(/_/g, " ")}</td>
            <td className="num">{percent(v.confidence, 1)}</td>
            <td className="num">{v.horizon}</td>
            <td className="num">{percent(v.var)}</td>
            <td className="num">{percent(v.cvar)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Drawdowns({ report }: { report: Report }) {
  if (report.drawdowns.length === 0) return <p className="muted">No drawdown.</p>;
  return (
    <table className="table metrics-table" data-testid="drawdowns-table">
      <thead>
        <tr>
          <th className="num">Depth</th>
          <th>Peak</th>
          <th>Trough</th>
          <th>Recovered</th>
          <th className="num">Bars</th>
        </tr>
      </thead>
      <tbody>
        {report.drawdowns.map((d) => (
          <tr key={d.start}>
            <td className="num">{percent(d.depth)}</td>
            <td>{utcDay(d.start)}</td>
            <td>{utcDay(d.trough)}</td>
            <td>{d.recovery === null ? "not yet" : utcDay(d.recovery)}</td>
            <td className="num">{d.length.toLocaleString()}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Histogram({ report }: { report: Report }) {
  const { edges, counts } = report.histogram;
  const most = Math.max(1, ...counts);
  if (counts.length === 0) return <p className="muted">No returns yet.</p>;
  return (
    <div className="histogram" role="img" aria-label="Histogram of bar returns" data-testid="return-histogram">
      {counts.map((c, i) => (
        <div
          key={i}
          className={`histogram-bar ${(edges[i] ?? 0) + (edges[i + 1] ?? 0) < 0 ? "loss-bar" : "gain-bar"}`}
          style={{ height: `${(c / most) * 100}%` }}
          title={`${percent(edges[i] ?? null, 3)} to ${percent(edges[i + 1] ?? null, 3)}: ${c}`}
        />
      ))}
    </div>
  );
}

function Members({ report }: { report: Report }) {
  const c = report.correlation;
  return (
    <section>
      <h2>Members</h2>
      <table className="table" data-testid="portfolio-members">
        <thead>
          <tr>
            <th>Run</th>
            <th>Series</th>
            <th className="num">Weight</th>
            <th className="num">Return</th>
            <th className="num">Sharpe</th>
            <th className="num">Max drawdown</th>
            <th className="num">Exposure</th>
          </tr>
        </thead>
        <tbody>
          {report.members.map((m) => (
            <tr key={`${m.kind}/${m.id}`}>
              <td>
                <Link to={runPath(m.kind as ReportKind, m.id)}>{m.name}</Link> <span className="muted small">{m.kind}</span>
              </td>
              <td>
                {m.symbol} <span className="muted">{m.timeframe}</span>
              </td>
              <td className="num">{percent(m.weight, 1)}</td>
              <td className="num">{formatMetric("total_return", m.total_return)}</td>
              <td className="num">{formatMetric("sharpe", m.sharpe)}</td>
              <td className="num">{formatMetric("max_drawdown", m.max_drawdown)}</td>
              <td className="num">{formatMetric("exposure", m.exposure)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {c && c.labels.length > 1 && (
        <>
          <h2>Correlation of bar returns</h2>
          <table className="heatmap" data-testid="portfolio-correlation" aria-label="Correlation">
            <thead>
              <tr>
                <th className="heatmap-corner" />
                {c.labels.map((l, i) => (
                  <th key={i}>{l}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {c.matrix.map((row, i) => (
                <tr key={i}>
                  <th>{c.labels[i]}</th>
                  {row.map((v, j) => (
                    <td key={j} style={{ background: v === null ? undefined : returnColour(v * 0.1) }}>
                      {v === null ? "—" : v.toFixed(2)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {report.exposure && report.exposure.bySymbol.length > 0 && (
        <>
          <h2>
            Exposure by symbol{" "}
            <span className="muted small">
              HHI {report.exposure.hhi?.toFixed(3) ?? "—"}, {report.exposure.effective?.toFixed(1) ?? "—"} effective symbols
            </span>
          </h2>
          <table className="table metrics-table" data-testid="portfolio-exposure">
            <thead>
              <tr>
                <th>Symbol</th>
                <th className="num">Capital weight</th>
                <th className="num">Time in market</th>
              </tr>
            </thead>
            <tbody>
              {report.exposure.bySymbol.map((s) => (
                <tr key={s.symbol}>
                  <td>{s.symbol}</td>
                  <td className="num">{percent(s.weight, 1)}</td>
                  <td className="num">{percent(s.exposure, 1)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
