/** Start a live session of a strategy version (`?strategy=`, `?version=` preselect): on paper,
 * or in agent mode, where every order also goes to one of your execution agents. */
import { useState } from "react";
import { useAgents } from "../agents/queries";
import { RunForm, type RunRequest } from "../backtests/RunForm";
import { navigate, useLocation } from "../router";
import { ErrorBox } from "../ui/ErrorBox";
import { useCreateSession } from "./queries";

export function NewSessionPage() {
  const { search } = useLocation();
  const create = useCreateSession();
  const agents = useAgents();
  const [mode, setMode] = useState<"paper" | "agent">("paper");
  const [agentId, setAgentId] = useState("");
  const [agentSymbol, setAgentSymbol] = useState("");
  const chosenAgent = agentId || agents.data?.data[0]?.id || "";
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
        ...(mode === "agent"
          ? { mode: "agent" as const, agent_id: chosenAgent, agent_symbol: agentSymbol.trim() || null }
          : { mode: "paper" as const }),
      },
      { onSuccess: (s) => navigate(`/sessions/${s.id}`) },
    );
  const version = search.get("version");
  const noAgents = agents.data !== undefined && agents.data.data.length === 0;
  return (
    <div className="page">
      <div className="section-head">
        <h1>New live session</h1>
      </div>
      <p className="muted">
        A session trades the strategy on each new bar of the series as it closes, with a backtest's fills, fees and slippage. In
        agent mode each order also goes to your MetaTrader or NinjaTrader agent, and the session shows what its terminal executed
        beside the model.
      </p>
      <fieldset className="card" aria-label="execution">
        <legend>Execution</legend>
        <label className="checkbox">
          <input type="radio" name="mode" value="paper" checked={mode === "paper"} onChange={() => setMode("paper")} /> Paper
        </label>
        <label className="checkbox">
          <input
            type="radio"
            name="mode"
            value="agent"
            data-testid="mode-agent"
            checked={mode === "agent"}
            disabled={noAgents}
            onChange={() => setMode("agent")}
          />{" "}
          Through an agent{noAgents && <span className="muted"> (register one under Agents first)</span>}
        </label>
        {agents.error && <ErrorBox error={agents.error} onRetry={() => void agents.refetch()} />}
        {mode === "agent" && agents.data && (
          <>
            <label>
              Agent{" "}
              <select name="agent" value={chosenAgent} onChange={(e) => setAgentId(e.target.value)}>
                {agents.data.data.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name} ({a.platform}, {a.account_number})
                  </option>
                ))}
              </select>
            </label>
            <label>
              The terminal's symbol{" "}
              <input
                name="agent_symbol"
                value={agentSymbol}
                placeholder="default: the session's symbol"
                maxLength={64}
                onChange={(e) => setAgentSymbol(e.target.value)}
              />
            </label>
          </>
        )}
      </fieldset>
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
