/**
 * One agent: its connection and health score with the components it is made of, the positions
 * the platform records for its account, its last trade sync, and its commands (CommandQueue.tsx:
 * the agent's command list, read-only, polled every few seconds) with a form to
 * queue one. Updates follow the notification cutover of its channel (`agent:{id}`, family
 * `agents`; live/agent.ts): pushed while the family is live, polled otherwise.
 */
import { useSession } from "../auth/session";
import { Link, navigate } from "../router";
import { AGENT_FAMILIES, useAgentCutover } from "../live/agent";
import { LivePanel } from "../live/LivePanel";
import { ErrorBox, Loading, PageLoadError } from "../ui/ErrorBox";
import { connectionTone, formatAge, healthTone } from "./agents";
import { CommandQueue } from "./CommandQueue";
import {
  AGENT_POLL_MS,
  useAgent,
  useAgentPositions,
  useAgentsStatus,
  useDeleteAgent,
  type Agent,
} from "./queries";
import { StatGrid, type Stat } from "../ui/StatGrid";

export default function AgentPage({ agentId }: { agentId: string }) {
  const { tokens } = useSession();
  const cut = useAgentCutover(tokens, agentId);
  const live = cut.cadenceOf("agent") !== "poll"; // the agents family is pushed: a slow refresh only
  const agent = useAgent(agentId, live);
  const positions = useAgentPositions(agentId, false); // on no channel: always polled
  const status = useAgentsStatus(false);
  const remove = useDeleteAgent();

  if (agent.error)
    return <PageLoadError error={agent.error} retry={agent.refetch} back={<Link to="/agents">Back to your agents</Link>} />;
  if (agent.isPending) return <Loading what="the agent" />;
  const a = agent.data;
  const lastSync = status.data?.agents.find((s) => s.id === agentId)?.last_sync ?? null;
  return (
    <div className="page page-wide">
      <div className="section-head">
        <h1>
          {a.name} <span className="muted small">{a.platform} · {a.id}</span>
        </h1>
        <span className={`status ${connectionTone(a.connection?.state)}`} data-testid="agent-state" role="status">
          {a.connection?.state ?? "offline"}
        </span>
        <button
          type="button"
          className="danger"
          data-testid="agent-delete"
          disabled={remove.isPending}
          onClick={() => {
            if (window.confirm(`Forget “${a.name}”? Its queued commands are dropped; revoke its key under API keys.`))
              remove.mutate(a.id, { onSuccess: () => navigate("/agents") });
          }}
        >
          Forget
        </button>
      </div>
      <p className="facts">
        <span>
          {a.broker} {a.account_number} <span className="muted">{a.currency}</span>
        </span>
        <span>heartbeat every {a.heartbeat_seconds} s</span>
        <span>registered {new Date(a.created_at).toLocaleString()}</span>
      </p>
      <LivePanel cut={cut} families={AGENT_FAMILIES} pollSeconds={AGENT_POLL_MS / 1000} />
      {remove.error && <ErrorBox error={remove.error} />}
      {a.sync_overdue && (
        <div className="error-box" role="alert">
          <strong>Trade sync overdue</strong>
          <div>The agent is connected but has not synced its trades for 90 s (it should every 30 s).</div>
        </div>
      )}
      <Connection agent={a} />
      <section>
        <h2>Positions {positions.data && <span className="muted small">{positions.data.count}</span>}</h2>
        {positions.error && <ErrorBox error={positions.error} onRetry={() => void positions.refetch()} />}
        {positions.isPending ? <Loading what="the positions" /> : positions.data && <Positions rows={positions.data.data} />}
      </section>
      <section>
        <h2>Last trade sync</h2>
        {status.error && <ErrorBox error={status.error} onRetry={() => void status.refetch()} />}
        {status.isPending ? <Loading what="the last sync" /> : <LastSync sync={lastSync} />}
      </section>
      <CommandQueue agentId={agentId} />
    </div>
  );
}

function Connection({ agent: a }: { agent: Agent }) {
  const c = a.connection;
  const ms = (v: number | null | undefined) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);
  const stats: Stat[] = [
    ["Health", a.health ? `${a.health.score} / 100` : "—", "agent-health"],
    ["Last heartbeat", c?.last_heartbeat_at ? `${formatAge(Date.now() - new Date(c.last_heartbeat_at).getTime())} ago` : "never"],
    ["Heartbeats", c ? c.heartbeats.toLocaleString() : "0"],
    ["Interval", ms(c?.interval_ms)],
    ["Jitter", ms(c?.jitter_ms)],
    ["Latency", ms(c?.latency_ms)],
    ["Clock offset", ms(c?.clock_offset_ms)],
  ];
  const account = c?.account ?? null;
  return (
    <>
      <StatGrid label="Connection" stats={stats} />
      {a.health && (
        <table className="table metrics-table plain-labels" aria-label="Health components" data-testid="agent-health-components">
          <thead>
            <tr>
              <th>Component</th>
              <th className="num">Points</th>
              <th className="num">Weight</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(a.health.components).map(([name, points]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td className="num">
                  <span className={`status ${healthTone(points)}`}>{points}</span>
                </td>
                <td className="num">{Math.round((a.health!.weights[name] ?? 0) * 100)} %</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {account && (
        <p className="facts" aria-label="Account as last reported" data-testid="agent-account">
          {Object.entries(account).map(([k, v]) => (
            <span key={k}>
              <span className="muted">{k.replace(/_/g, " ")}</span> {typeof v === "number" ? v.toLocaleString() : String(v)}
            </span>
          ))}
        </p>
      )}
    </>
  );
}

const num = (v: unknown) => (typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 6 }) : v === null || v === undefined ? "—" : String(v));

function Positions({ rows }: { rows: Record<string, unknown>[] }) {
  if (rows.length === 0) return <p className="muted">No open positions on record.</p>;
  return (
    <table className="table" data-testid="agent-positions">
      <thead>
        <tr>
          <th>Ticket</th>
          <th>Symbol</th>
          <th>Side</th>
          <th className="num">Volume</th>
          <th className="num">Open price</th>
          <th className="num">SL</th>
          <th className="num">TP</th>
          <th>Opened (UTC)</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((p) => (
          <tr key={String(p.ticket)}>
            <td>
              <code>{String(p.ticket)}</code>
            </td>
            <td>{String(p.symbol ?? "")}</td>
            <td>{String(p.side ?? "")}</td>
            <td className="num">{num(p.volume)}</td>
            <td className="num">{num(p.open_price)}</td>
            <td className="num">{num(p.sl)}</td>
            <td className="num">{num(p.tp)}</td>
            <td className="small">{typeof p.opened_at_ms === "number" ? new Date(p.opened_at_ms).toISOString().replace("T", " ").slice(0, 16) : "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function LastSync({ sync }: { sync: Record<string, unknown> | null }) {
  if (sync === null) return <p className="muted">No trade sync yet.</p>;
  const at = typeof sync.synced_at_ms === "number" ? sync.synced_at_ms : null;
  const rows: [string, unknown][] = [
    ["Synced", at === null ? "—" : `${new Date(at).toISOString().replace("T", " ").slice(0, 19)} UTC (${formatAge(Date.now() - at)} ago)`],
    ["Positions", sync.positions],
    ["Matched", sync.matched],
    ["Conflicts", sync.conflicts],
    ["Missing on the platform", sync.missing_on_platform],
    ["Adopted (unknown to the server)", sync.unknown_to_server],
    ["Diverging", sync.diverging],
    ["Syncs so far", sync.count],
  ];
  return (
    <table className="table metrics-table plain-labels" aria-label="Last trade sync" data-testid="agent-last-sync">
      <tbody>
        {rows.map(([label, value]) => (
          <tr key={label}>
            <th scope="row">{label}</th>
            <td className="num">{num(value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
