/** Your strategies, and the templates to start a new one from. */
import { useState } from "react";
import { Link, navigate } from "../router";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { useDeleteStrategy, useInstantiateTemplate, useStrategies, useTemplates } from "./queries";

export function StrategiesPage() {
  const [q, setQ] = useState("");
  const strategies = useStrategies(q);
  const templates = useTemplates();
  const instantiate = useInstantiateTemplate();
  const remove = useDeleteStrategy();
  return (
    <div className="page strategies-page">
      <section>
        <div className="section-head">
          <h1>Strategies</h1>
          <input type="search" placeholder="Search by name or description" value={q} onChange={(e) => setQ(e.target.value)} />
          <button type="button" className="primary" onClick={() => navigate("/strategies/new")}>
            New strategy
          </button>
        </div>
        {strategies.error && <ErrorBox error={strategies.error} onRetry={() => void strategies.refetch()} />}
        {remove.error && <ErrorBox error={remove.error} />}
        {strategies.isPending ? (
          <Loading what="strategies" />
        ) : strategies.data && strategies.data.data.length === 0 ? (
          <p className="muted">{q ? "No strategy matches." : "No strategies yet: start from a template below, or a blank one."}</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Version</th>
                <th>Updated</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {strategies.data?.data.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link to={`/strategies/${s.id}`}>{s.name}</Link>
                    {s.draft && (
                      <span className="badge badge-draft" title="migrated from Beta1 with problems: open it to fix them">
                        draft
                      </span>
                    )}
                    {s.description && <div className="muted small">{s.description}</div>}
                  </td>
                  <td>v{s.current_version}</td>
                  <td>{new Date(s.updated_at).toLocaleString()}</td>
                  <td>
                    <div className="row-actions">
                      <Link to={`/backtests/new?strategy=${s.id}`} aria-label={`Backtest ${s.name}`}>
                        Backtest
                      </Link>
                      <Link to={`/sessions/new?strategy=${s.id}`} aria-label={`Go live with ${s.name}`}>
                        Go live
                      </Link>
                      <button
                        type="button"
                        className="danger"
                        disabled={remove.isPending}
                        onClick={() => {
                          if (window.confirm(`Delete "${s.name}"?`)) remove.mutate({ id: s.id, version: s.current_version });
                        }}
                      >
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {strategies.data && strategies.data.count > strategies.data.data.length && (
          <p className="muted">
            Showing {strategies.data.data.length} of {strategies.data.count}: search to narrow them down.
          </p>
        )}
      </section>
      <section>
        <h2>Start from a template</h2>
        {templates.error && <ErrorBox error={templates.error} onRetry={() => void templates.refetch()} />}
        {instantiate.error && <ErrorBox error={instantiate.error} />}
        {templates.isPending && <Loading what="templates" />}
        <div className="template-grid">
          {templates.data?.data.map((t) => (
            <div key={t.key} className="card template-card">
              <h3>{t.name}</h3>
              <p>{t.summary}</p>
              <div className="tags">
                {t.tags.map((tag) => (
                  <span key={tag} className="badge">
                    {tag}
                  </span>
                ))}
              </div>
              <button
                type="button"
                disabled={instantiate.isPending}
                onClick={() =>
                  instantiate.mutate(t.key, { onSuccess: (created) => navigate(`/strategies/${created.id}`) })
                }
              >
                Use this template
              </button>
            </div>
          ))}
        </div>
      </section>
    </div>
  );
}
