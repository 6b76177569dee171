/**
 * One live session: its account (position, cash, equity), the equity and drawdown growing bar
 * by bar, its metrics and trades, and pause, resume and stop. Updates follow the notification
 * cutover of the `session:{id}` channel's families (live/cutover.ts): pushed where a family is
 * live, polled otherwise and whenever the socket is down. Loaded lazily (charts).
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useRef } from "react";
import { useSession } from "../auth/session";
import { MetricsTable } from "../backtests/MetricsTable";
import { TradesTable } from "../backtests/TradesTable";
import { PriceChart, ValueChart, type Candle } from "../charts/Charts";
import { drawdownSeries, formatDuration, toSeconds, tradeMarkers } from "../charts/series";
import { Link, navigate } from "../router";
import { ErrorBox, Loading, PageLoadError } from "../ui/ErrorBox";
import { StatusBadge } from "../ui/Status";
import { LivePanel } from "../live/LivePanel";
import { SESSION_FAMILIES, useSessionCutover } from "../live/session";
import {
  SESSION_POLL_MS,
  SESSION_TRADES,
  useDeleteSession,
  useLiveSession,
  useRestartSession,
  useSessionAction,
  useSessionBars,
  useSessionEquity,
  useSessionTerminal,
  useSessionTrades,
  type LiveSession,
} from "./queries";
import { formatMoney } from "./SessionsPage";
import { StatGrid, type Stat } from "../ui/StatGrid";
import { terminalMoves, terminalRows } from "./terminal";

export default function SessionPage({ sessionId }: { sessionId: string }) {
  const { tokens } = useSession();
  const client = useQueryClient();
  const key = useMemo(() => ["session", sessionId], [sessionId]);
  const cut = useSessionCutover(tokens, sessionId, SESSION_TRADES);
  const session = useLiveSession(sessionId, cut.cadenceOf("session"));
  const equity = useSessionEquity(sessionId, session.data?.status, cut.cadenceOf("equity"));
  const trades = useSessionTrades(sessionId, session.data?.status, cut.cadenceOf("trades"));
  const summary = session.data?.terminal;
  const terminal = useSessionTerminal(sessionId, summary ? terminalMoves(summary) : undefined);
  const terminalTrades = useMemo(() => (terminal.data ? terminalRows(terminal.data) : []), [terminal.data]);
  const action = useSessionAction(sessionId);
  const restart = useRestartSession(sessionId);
  const remove = useDeleteSession(sessionId);

  const equityPoints = useMemo(() => (equity.data?.points ?? []).map((p) => ({ time: toSeconds(p.ts), value: p.equity })), [equity.data]);
  const drawdown = useMemo(() => drawdownSeries(equityPoints, session.data?.capital), [equityPoints, session.data?.capital]);
  const bars = useSessionBars(session.data, equity.data?.points[0]?.ts);
  // The candles follow the bars the session applies (pushed or polled), not a clock.
  const applied = session.data?.bars_applied;
  const lastApplied = useRef(applied);
  useEffect(() => {
    if (applied === undefined || applied === lastApplied.current) return;
    const first = lastApplied.current === undefined;
    lastApplied.current = applied;
    if (!first) void client.invalidateQueries({ queryKey: [...key, "bars"] });
  }, [applied, client, key]);
  const candles = useMemo<Candle[]>(
    () => (bars.data ?? []).map((b) => ({ time: toSeconds(b.ts), open: b.open, high: b.high, low: b.low, close: b.close })),
    [bars.data],
  );
  const markers = useMemo(
    () =>
      trades.data && candles.length > 0
        ? tradeMarkers(trades.data.trades, candles.map((c) => c.time), { labels: trades.data.trades.length <= 12 })
        : [],
    [trades.data, candles],
  );

  if (session.error)
    return <PageLoadError error={session.error} retry={session.refetch} back={<Link to="/sessions">Back to your sessions</Link>} />;
  if (session.isPending) return <Loading what="the session" />;
  const s = session.data;
  return (
    <div className="page page-wide">
      <div className="section-head">
        <h1>
          {s.symbol} <span className="muted small">{s.timeframe} · {s.mode} · {s.id}</span>
        </h1>
        <StatusBadge status={s.status} />
        <Link to={`/analytics/sessions/${s.id}`} data-testid="tear-sheet-link">
          Tear sheet
        </Link>
        {s.status === "running" && (
          <button type="button" data-testid="session-pause" disabled={action.isPending} onClick={() => action.mutate("pause")}>
            Pause
          </button>
        )}
        {s.status === "paused" && (
          <button type="button" data-testid="session-resume" disabled={action.isPending} onClick={() => action.mutate("resume")}>
            Resume
          </button>
        )}
        {(s.status === "running" || s.status === "paused") && (
          <button
            type="button"
            className="danger"
            data-testid="session-stop"
            disabled={action.isPending}
            onClick={() => {
              if (window.confirm("Stop this session? A stopped session cannot be resumed.")) action.mutate("stop");
            }}
          >
            Stop
          </button>
        )}
        {(s.status === "stopped" || s.status === "failed") && (
          <button
            type="button"
            data-testid="session-restart"
            disabled={restart.isPending}
            title="A new session with the same strategy version, series, capital and settings"
            onClick={() => restart.mutate(undefined, { onSuccess: (next) => navigate(`/sessions/${next.id}`) })}
          >
            Start again
          </button>
        )}
        <button
          type="button"
          className="danger"
          data-testid="session-delete"
          disabled={remove.isPending}
          onClick={() => {
            if (window.confirm("Delete this session and its history? This cannot be undone."))
              remove.mutate(undefined, { onSuccess: () => navigate("/sessions") });
          }}
        >
          Delete
        </button>
      </div>
      {restart.error && <ErrorBox error={restart.error} />}
      {remove.error && <ErrorBox error={remove.error} />}
      <p className="facts">
        {s.strategy_id && (
          <span>
            strategy <Link to={`/strategies/${s.strategy_id}${s.version !== null ? `/versions/${s.version}` : ""}`}>v{s.version}</Link>
          </span>
        )}
        <span>started {new Date(s.created_at).toLocaleString()}</span>
        {Object.keys(s.params).length > 0 && (
          <span>
            params <code>{JSON.stringify(s.params)}</code>
          </span>
        )}
        {(s.status === "stopped" || s.status === "failed") && (
          <span className="muted live-note" data-testid="live-updates">
            finished
          </span>
        )}
      </p>
      {s.status !== "stopped" && s.status !== "failed" && <LivePanel cut={cut} families={SESSION_FAMILIES} pollSeconds={SESSION_POLL_MS / 1000} />}
      {action.error && <ErrorBox error={action.error} />}
      {s.status === "failed" && (
        <div className="error-box" role="alert">
          <strong>The session failed</strong>
          <div>{s.error ?? "no reason was recorded"}</div>
        </div>
      )}
      <Account session={s} />
      <section className="chart-pair">
        <div>
          <h2>
            Equity <span className="muted small">UTC</span>
          </h2>
          {equity.error && <ErrorBox error={equity.error} onRetry={() => void equity.refetch()} />}
          {equity.isPending ? <Loading what="the equity" /> : <ValueChart points={equityPoints} kind="equity" label="Equity curve" testId="equity-chart" />}
        </div>
        <div>
          <h2>Drawdown</h2>
          {equity.isPending ? <Loading what="the drawdown" /> : <ValueChart points={drawdown} kind="drawdown" label="Drawdown" testId="drawdown-chart" />}
        </div>
      </section>
      {equity.data && equity.data.points.length === 0 && (
        <p className="muted">No bar applied since the start: the curves begin with the next closed bar of the series.</p>
      )}
      {equityPoints.length > 0 && (
        <section>
          <h2>
            Price and closed trades <span className="muted small">since the first bar applied, UTC</span>
          </h2>
          {bars.error && <ErrorBox error={bars.error} onRetry={() => void bars.refetch()} />}
          {bars.isPending ? <Loading what="the bars" /> : <PriceChart candles={candles} markers={markers} label={`${s.symbol} candles with trades`} />}
        </section>
      )}
      <section>
        <h2>Metrics</h2>
        <MetricsTable summary={s.metrics} />
      </section>
      <section>
        <h2>Trades {trades.data && <span className="muted small">{trades.data.total.toLocaleString()}</span>}</h2>
        {trades.error && <ErrorBox error={trades.error} onRetry={() => void trades.refetch()} />}
        {trades.isPending ? (
          <Loading what="the trades" />
        ) : (
          trades.data && (
            <>
              <TradesTable trades={trades.data.trades} total={trades.data.trades.length} />
              {trades.data.total > trades.data.trades.length && (
                <p className="muted small">The latest {trades.data.trades.length} of {trades.data.total.toLocaleString()} trades.</p>
              )}
            </>
          )
        )}
      </section>
      {s.terminal && (
        <section>
          <h2>
            Trades on the terminal <span className="muted small">as the agent executed them: its prices and volumes, net of its commissions and swaps</span>
          </h2>
          {terminal.error && <ErrorBox error={terminal.error} onRetry={() => void terminal.refetch()} />}
          {terminal.isPending ? (
            <Loading what="the terminal's trades" />
          ) : (
            <div data-testid="terminal-trades">
              <TradesTable trades={terminalTrades} total={terminalTrades.length} testId="terminal-trades-table" />
            </div>
          )}
        </section>
      )}
    </div>
  );
}

function Account({ session: s }: { session: LiveSession }) {
  const pnl = s.equity - s.capital;
  const stats: Stat[] = [
    ["Position", `${Number(s.position.toPrecision(6))}`, "session-position"],
    ["Equity", formatMoney(s.equity), "session-equity"],
    ["P&L", `${formatMoney(pnl)} (${((pnl / s.capital) * 100).toFixed(2)} %)`],
    ["Cash", formatMoney(s.cash)],
    ["Capital", formatMoney(s.capital)],
    ["Bars applied", s.bars_applied.toLocaleString()],
    ["Warm-up", s.warmed_up ? "done" : `${s.warmup} bars`],
    ["Last bar (UTC)", s.last_bar_time ? s.last_bar_time.replace("T", " ").slice(0, 16) : "—"],
    ["Lag", s.lag_seconds === null ? "—" : formatDuration(s.lag_seconds)],
    ["Gaps / corrections", `${s.gaps} / ${s.corrections}`],
  ];
  const t = s.terminal;
  if (!t) return <StatGrid label="Account" stats={stats} />;
  // Agent mode: the figures above are the fill model's; these are what the terminal executed.
  const terminal: Stat[] = [
    ["Position", `${Number(t.position.toPrecision(6))}`, "terminal-position"],
    ["Equity", formatMoney(t.equity), "terminal-equity"],
    ["Realized P&L", formatMoney(t.realized_pnl)],
    ["Commissions and swaps", formatMoney(t.costs), "terminal-costs"],
    ["vs model", formatMoney(t.equity - s.equity), "terminal-vs-model"],
    ["Open tickets", t.open_tickets.toLocaleString()],
    ["Trades", t.trades.toLocaleString()],
    ["Orders executed / refused / pending", `${t.orders.executed} / ${t.orders.refused} / ${t.orders.pending}`],
  ];
  return (
    <>
      <StatGrid label="Account (fill model)" stats={stats} />
      <StatGrid label="Terminal (as the agent executed it)" stats={terminal} />
    </>
  );
}
