/**
 * Your portfolios (`/api/analytics/portfolios`): the list, each opening its tear sheet, a new
 * one from some of your completed backtests and sessions, and deleting one.
 */
import { useState, type FormEvent } from "react";
import { useJobs } from "../backtests/queries";
import { Link, navigate } from "../router";
import { useSessions } from "../sessions/queries";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { useCreatePortfolio, useDeletePortfolio, usePortfolios, type PortfolioCreate } from "./queries";

export default function PortfoliosPage() {
  const portfolios = usePortfolios();
  const remove = useDeletePortfolio();
  const [creating, setCreating] = useState(false);
  return (
    <div className="page">
      <div className="section-head">
        <h1>Portfolios</h1>
        <button type="button" className="primary" onClick={() => setCreating((c) => !c)} aria-expanded={creating} data-testid="new-portfolio-toggle">
          New portfolio
        </button>
      </div>
      <p className="muted">A portfolio combines some of your backtests and sessions into one account, analysed when opened (docs/analytics.md).</p>
      {creating && <NewPortfolio />}
      {portfolios.error && <ErrorBox error={portfolios.error} onRetry={() => void portfolios.refetch()} />}
      {remove.error && <ErrorBox error={remove.error} />}
      {portfolios.isPending ? (
        <Loading what="your portfolios" />
      ) : portfolios.data && portfolios.data.length === 0 ? (
        <p className="muted">No portfolios yet.</p>
      ) : (
        portfolios.data && (
          <table className="table" data-testid="portfolios-table">
            <thead>
              <tr>
                <th>Portfolio</th>
                <th>Weighting</th>
                <th className="num">Members</th>
                <th>Benchmark</th>
                <th>Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {portfolios.data.map((p) => (
                <tr key={p.id} data-testid={`portfolio-${p.id}`}>
                  <td>
                    <Link to={`/analytics/portfolios/${p.id}`}>{p.name}</Link>
                    <div className="muted small">
                      <code>{p.id}</code>
                    </div>
                  </td>
                  <td>{p.weighting}</td>
                  <td className="num">{p.members.length}</td>
                  <td>{p.benchmark ?? "each run's symbol"}</td>
                  <td className="small">{new Date(p.created_at).toLocaleString()}</td>
                  <td>
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Delete ${p.name}`}
                      disabled={remove.isPending}
                      onClick={() => window.confirm(`Delete the portfolio “${p.name}”? Its runs stay.`) && remove.mutate(p.id)}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
    </div>
  );
}

type Member = PortfolioCreate["members"][number];
const memberKey = (m: Member) => `${m.kind}:${m.id}`;

function NewPortfolio() {
  const jobs = useJobs("backtest");
  const sessions = useSessions();
  const create = useCreatePortfolio();
  const [name, setName] = useState("");
  const [weighting, setWeighting] = useState<"capital" | "equal">("capital");
  const [members, setMembers] = useState<Map<string, Member>>(new Map());
  const toggle = (m: Member, on: boolean) =>
    setMembers((old) => {
      const next = new Map(old);
      if (on) next.set(memberKey(m), m);
      else next.delete(memberKey(m));
      return next;
    });
  const problems = [...(name.trim() === "" ? ["a name"] : []), ...(members.size === 0 ? ["at least one run"] : [])];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length > 0) return;
    create.mutate(
      { name: name.trim(), weighting, members: [...members.values()] },
      { onSuccess: (p) => navigate(`/analytics/portfolios/${p.id}`) },
    );
  };
  const backtests = (jobs.data?.items ?? []).filter((j) => j.status === "completed");
  const liveRuns = sessions.data?.items ?? [];
  const box = (m: Member, label: string, detail: string) => (
    <label className="checkbox" key={memberKey(m)}>
      <input type="checkbox" checked={members.has(memberKey(m))} onChange={(e) => toggle(m, e.target.checked)} aria-label={`${m.kind} ${m.id}`} />
      {label} <span className="muted small">{detail}</span>
    </label>
  );
  return (
    <form className="run-form" onSubmit={submit} aria-label="New portfolio" data-testid="new-portfolio-form">
      <fieldset>
        <legend>New portfolio</legend>
        <label className="field">
          <span className="field-label">Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} aria-label="Portfolio name" maxLength={100} />
        </label>
        <label className="field">
          <span className="field-label">Weighting</span>
          <select value={weighting} onChange={(e) => setWeighting(e.target.value as typeof weighting)} aria-label="Weighting">
            <option value="capital">by starting capital</option>
            <option value="equal">equal</option>
          </select>
        </label>
        <div className="member-lists">
          <div>
            <strong>Completed backtests</strong>
            {jobs.error && <ErrorBox error={jobs.error} />}
            {jobs.isPending ? <Loading what="backtests" /> : backtests.length === 0 ? <p className="muted small">None.</p> : backtests.map((j) => box({ kind: "backtest", id: j.id }, `${j.symbol} ${j.timeframe}`, `${j.start.slice(0, 10)} · ${j.id}`))}
          </div>
          <div>
            <strong>Sessions</strong>
            {sessions.error && <ErrorBox error={sessions.error} />}
            {sessions.isPending ? <Loading what="sessions" /> : liveRuns.length === 0 ? <p className="muted small">None.</p> : liveRuns.map((s) => box({ kind: "session", id: s.id }, `${s.symbol} ${s.timeframe}`, `${s.status} · ${s.id}`))}
          </div>
        </div>
        {problems.length > 0 && <p className="form-problems">Needs {problems.join(", ")}.</p>}
        {create.error && <ErrorBox error={create.error} />}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={problems.length > 0 || create.isPending} data-testid="create-portfolio">
            Create and open
          </button>
        </div>
      </fieldset>
    </form>
  );
}
