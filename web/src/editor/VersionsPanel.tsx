/** The strategy's versions, newest first: open one to read it or to start the next from it. */
import { useVersions } from "../strategies/queries";
import { Link } from "../router";
import { ErrorBox } from "../ui/ErrorBox";

export function VersionsPanel({ strategyId, viewing }: { strategyId: string; viewing?: number }) {
  const versions = useVersions(strategyId);
  return (
    <div className="versions-panel">
      <h3>Versions</h3>
      {versions.error && <ErrorBox error={versions.error} onRetry={() => void versions.refetch()} />}
      {versions.isPending && <div className="muted">loading…</div>}
      <ul>
        {versions.data?.data.map((v, i) => (
          <li key={v.n} className={v.n === viewing ? "viewing" : undefined}>
            <Link to={i === 0 ? `/strategies/${strategyId}` : `/strategies/${strategyId}/versions/${v.n}`}>
              v{v.n}
            </Link>{" "}
            <span className="muted">{new Date(v.created_at).toLocaleString()}</span>
            {v.plan_id === null && <span className="badge badge-draft">draft</span>}
            {i === 0 && <span className="badge">current</span>}
          </li>
        ))}
      </ul>
    </div>
  );
}
