/**
 * Your execution agents: connection state and health score of each (polled), the counts of
 * `GET /api/agents/status`, and the register form (the agent's API key shown once).
 */
import { useState, type FormEvent } from "react";
import { Link } from "../router";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { SecretOnce } from "../ui/SecretOnce";
import { agentBody, agentProblems, connectionTone, EMPTY_AGENT, formatAge, healthTone, type AgentDraft } from "./agents";
import { AGENT_POLL_MS, useAgents, useAgentsStatus, useRegisterAgent, type Agent } from "./queries";
import { StatGrid, type Stat } from "../ui/StatGrid";

export default function AgentsPage() {
  const agents = useAgents();
  const status = useAgentsStatus();
  const [created, setCreated] = useState<{ agent: Agent; key: string | null } | null>(null);
  const [registering, setRegistering] = useState(false);
  const now = Date.now();
  return (
    <div className="page page-wide">
      <div className="section-head">
        <h1>Agents</h1>
        <button type="button" className="primary" onClick={() => setRegistering((r) => !r)} aria-expanded={registering} data-testid="register-agent-toggle">
          Register an agent
        </button>
      </div>
      <p className="muted">
        An agent is a trading terminal (MetaTrader 5, NinjaTrader) that takes the platform's orders with its own API key
        (docs/agents.md). States and scores refresh every {(AGENT_POLL_MS * 2) / 1000} s.
      </p>
      {created && (
        <div>
          <p>
            Registered <Link to={`/agents/${created.agent.id}`}>{created.agent.name}</Link>.
          </p>
          {created.key !== null ? (
            <SecretOnce secret={created.key} what="agent key" onDone={() => setCreated(null)} testId="new-agent-key" />
          ) : (
            <div className="error-box" role="alert">
              <strong>No key came back</strong>
              <div>The answer carried no API key for the agent; create one for it under API keys.</div>
            </div>
          )}
        </div>
      )}
      {registering && (
        <RegisterAgentForm
          onRegistered={(agent, key) => {
            setCreated({ agent, key });
            setRegistering(false);
          }}
        />
      )}
      {status.data && <StatusSummary status={status.data} />}
      {status.error && <ErrorBox error={status.error} onRetry={() => void status.refetch()} />}
      {agents.error && <ErrorBox error={agents.error} onRetry={() => void agents.refetch()} />}
      {agents.isPending ? (
        <Loading what="your agents" />
      ) : agents.data && agents.data.data.length === 0 ? (
        <p className="muted">No agents yet: register one, then start its terminal with the key.</p>
      ) : (
        agents.data && (
          <table className="table" data-testid="agents-table">
            <thead>
              <tr>
                <th>Agent</th>
                <th>Account</th>
                <th>Connection</th>
                <th className="num">Health</th>
                <th>Last heartbeat</th>
                <th>Last sync</th>
              </tr>
            </thead>
            <tbody>
              {agents.data.data.map((a) => {
                const item = status.data?.agents.find((s) => s.id === a.id);
                const synced = item?.last_sync?.synced_at_ms;
                const state = a.connection?.state ?? "offline";
                return (
                  <tr key={a.id} data-testid={`agent-${a.id}`}>
                    <td>
                      <Link to={`/agents/${a.id}`}>{a.name}</Link>
                      <div className="muted small">
                        {a.platform} · <code>{a.id}</code>
                      </div>
                    </td>
                    <td className="small">
                      {a.broker} {a.account_number} <span className="muted">{a.currency}</span>
                    </td>
                    <td>
                      <span className={`status ${connectionTone(state)}`} data-testid={`agent-state-${a.id}`}>
                        {state}
                      </span>
                      {a.sync_overdue && <span className="badge badge-draft">sync overdue</span>}
                    </td>
                    <td className="num">
                      <span className={`status ${healthTone(a.health?.score)}`} data-testid={`agent-health-${a.id}`}>
                        {a.health ? a.health.score : "—"}
                      </span>
                    </td>
                    <td className="small">
                      {a.connection?.last_heartbeat_at ? `${formatAge(now - new Date(a.connection.last_heartbeat_at).getTime())} ago` : "never"}
                    </td>
                    <td className="small">{typeof synced === "number" ? `${formatAge(now - synced)} ago` : "never"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )
      )}
    </div>
  );
}

function StatusSummary({ status }: { status: NonNullable<ReturnType<typeof useAgentsStatus>["data"]> }) {
  const c = status.commands;
  const ms = (v: number | null) => (v === null ? "—" : `${Math.round(v)} ms`);
  const stats: Stat[] = [
    ["Agents", String(status.connections.total ?? 0)],
    ["Healthy / degraded", `${String(status.connections.healthy ?? 0)} / ${String(status.connections.degraded ?? 0)}`],
    ["Stale / offline", `${String(status.connections.stale ?? 0)} / ${String(status.connections.offline ?? 0)}`],
    ["Commands pending", `${c.pending} (+${c.leased} leased)`],
    ["Executed / rejected", `${c.executed} / ${c.rejected}`],
    ["Failed / expired", `${c.failed} / ${c.expired}`],
    ["Delivery p50 / p99", `${ms(c.delivery_ms_p50)} / ${ms(c.delivery_ms_p99)}`],
  ];
  return (
    <StatGrid label="Agents status" stats={stats} testId="agents-status" />
  );
}

function RegisterAgentForm({ onRegistered }: { onRegistered: (agent: Agent, key: string | null) => void }) {
  const register = useRegisterAgent();
  const [draft, setDraft] = useState<AgentDraft>(EMPTY_AGENT);
  const problems = agentProblems(draft);
  const set = (patch: Partial<AgentDraft>) => setDraft((d) => ({ ...d, ...patch }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length > 0) return;
    register.mutate(agentBody(draft), {
      onSuccess: (created) => {
        const { api_key, ...agent } = created;
        onRegistered(agent, api_key ?? null);
        setDraft(EMPTY_AGENT);
      },
    });
  };
  return (
    <form className="run-form" onSubmit={submit} aria-label="Register an agent" data-testid="register-agent-form">
      <fieldset>
        <legend>Register an agent</legend>
        <label className="field">
          <span className="field-label">Name</span>
          <input value={draft.name} onChange={(e) => set({ name: e.target.value })} aria-label="Agent name" maxLength={100} />
        </label>
        <label className="field">
          <span className="field-label">Platform</span>
          <select value={draft.platform} onChange={(e) => set({ platform: e.target.value as AgentDraft["platform"] })} aria-label="Platform">
            <option value="mt5">MetaTrader 5</option>
            <option value="ninjatrader">NinjaTrader</option>
            <option value="other">other</option>
          </select>
        </label>
        <label className="field">
          <span className="field-label">Broker</span>
          <input value={draft.broker} onChange={(e) => set({ broker: e.target.value })} aria-label="Broker" maxLength={100} />
        </label>
        <label className="field">
          <span className="field-label">Account number</span>
          <input value={draft.account_number} onChange={(e) => set({ account_number: e.target.value })} aria-label="Account number" maxLength={64} />
        </label>
        <label className="field">
          <span className="field-label">Currency</span>
          <input value={draft.currency} onChange={(e) => set({ currency: e.target.value.toUpperCase() })} aria-label="Currency" className="narrow" maxLength={8} />
        </label>
        <label className="field">
          <span className="field-label">Heartbeat (s)</span>
          <input value={draft.heartbeat_seconds} onChange={(e) => set({ heartbeat_seconds: e.target.value })} aria-label="Heartbeat seconds" className="narrow" inputMode="decimal" />
          <span className="field-hint">how often the terminal promises to report</span>
        </label>
        {problems.length > 0 && <p className="form-problems">Needs {problems.join(", ")}.</p>}
        {register.error && <ErrorBox error={register.error} />}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={problems.length > 0 || register.isPending} data-testid="register-agent">
            {register.isPending ? "Registering…" : "Register"}
          </button>
        </div>
      </fieldset>
    </form>
  );
}
