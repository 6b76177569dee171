/** Start a backtest or a sweep (`?strategy=` and `?version=` choose what the form starts with). */
import { Link, navigate, useLocation } from "../router";
import { RunForm, type RunRequest } from "./RunForm";
import { useSubmitBacktest, useSubmitSweep } from "./queries";

export function LaunchPage({ kind }: { kind: "backtest" | "sweep" }) {
  const { search } = useLocation();
  const backtest = useSubmitBacktest();
  const sweep = useSubmitSweep();
  const mutation = kind === "sweep" ? sweep : backtest;
  const submit = (r: RunRequest) => {
    const common = {
      strategy_id: r.strategy_id,
      version: r.version,
      symbol: r.symbol,
      timeframe: r.timeframe,
      start: r.start!,
      end: r.end!,
      config: r.config,
    };
    if (kind === "sweep")
      sweep.mutate({ ...common, search: r.search, metric: r.metric, walk_forward: r.walk_forward ?? null }, { onSuccess: (job) => navigate(`/backtests/sweeps/${job.id}`) });
    else backtest.mutate({ ...common, params: r.params }, { onSuccess: (job) => navigate(`/backtests/${job.id}`) });
  };
  const version = search.get("version");
  return (
    <div className="page">
      <div className="section-head">
        <h1>{kind === "sweep" ? "New sweep" : "New backtest"}</h1>
        {kind === "sweep" ? (
          <Link to={`/backtests/new${location.search}`}>a single backtest instead</Link>
        ) : (
          <Link to={`/backtests/sweeps/new${location.search}`}>sweep the parameters instead</Link>
        )}
      </div>
      <RunForm
        key={kind}
        kind={kind}
        initialStrategy={search.get("strategy") ?? undefined}
        initialVersion={version ? Number(version) : undefined}
        submitting={mutation.isPending}
        error={mutation.error}
        onSubmit={submit}
      />
    </div>
  );
}
