/** Start a live paper session of a strategy version (`?strategy=`, `?version=` preselect). */
import { RunForm, type RunRequest } from "../backtests/RunForm";
import { navigate, useLocation } from "../router";
import { useCreateSession } from "./queries";

export function NewSessionPage() {
  const { search } = useLocation();
  const create = useCreateSession();
  const submit = (r: RunRequest) =>
    create.mutate(
      {
        strategy_id: r.strategy_id,
        version: r.version,
        symbol: r.symbol,
        timeframe: r.timeframe,
        capital: r.capital!,
        params: r.params,
        config: r.config,
        mode: "paper",
      },
      { onSuccess: (s) => navigate(`/sessions/${s.id}`) },
    );
  const version = search.get("version");
  return (
    <div className="page">
      <div className="section-head">
        <h1>New live session</h1>
      </div>
      <p className="muted">
        A paper session trades the strategy on each new bar of the series as it closes, with a backtest's fills, fees and slippage.
      </p>
      <RunForm
        kind="session"
        initialStrategy={search.get("strategy") ?? undefined}
        initialVersion={version ? Number(version) : undefined}
        submitting={create.isPending}
        error={create.error}
        onSubmit={submit}
      />
    </div>
  );
}
