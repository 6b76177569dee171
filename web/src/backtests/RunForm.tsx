/**
 * The form that starts a run of a strategy version on a symbol: a backtest or a sweep over a
 * date range, or a live (paper) session. Strategy, version, symbol and timeframe are shared; the
 * tunables are values (backtest, session) or ranges (sweep); the execution config is the API's
 * `BacktestConfig`.
 */
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import type { Tunable } from "../editor/graph";
import { useStrategies, useVersion, useVersions } from "../strategies/queries";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import {
  dateRange,
  defaultRange,
  defaultSweepRange,
  paramValues,
  sweepSpace,
  symbolChoices,
  TIMEFRAMES,
  type SweepRange,
  type Timeframe,
  type WalkForwardFields,
  type WalkForwardSpec,
  walkForwardSpec,
} from "./form";
import { MetricOptions } from "./MetricOptions";
import type { BacktestConfig } from "./queries";
import { useSymbols } from "./queries";

export type RunKind = "backtest" | "sweep" | "session";

/** What the form hands to its page, ready for the API (the page sends it and navigates). */
export interface RunRequest {
  strategy_id: string;
  version: number;
  symbol: string;
  timeframe: Timeframe;
  params: Record<string, number>;
  config: BacktestConfig;
  /** backtest and sweep */
  start?: string;
  end?: string;
  /** sweep */
  search?: { method: "grid" | "random"; parameters: Record<string, { min: number; max: number; step: number }>; samples?: number };
  metric?: string;
  walk_forward?: WalkForwardSpec | null;
  /** session */
  capital?: number;
}

const MAX_COMBINATIONS = 10_000;

export function RunForm({
  kind,
  initialStrategy,
  initialVersion,
  submitting,
  error,
  onSubmit,
}: {
  kind: RunKind;
  initialStrategy?: string;
  initialVersion?: number;
  submitting: boolean;
  error: unknown;
  onSubmit: (request: RunRequest) => void;
}) {
  const strategies = useStrategies("");
  const symbols = useSymbols();
  const [strategyId, setStrategyId] = useState(initialStrategy ?? "");
  const versions = useVersions(strategyId || undefined);
  const runnable = useMemo(() => (versions.data?.data ?? []).filter((v) => v.plan_id !== null), [versions.data]);
  const [version, setVersion] = useState<number | undefined>(initialVersion);
  const chosenVersion = version ?? runnable[0]?.n;
  const versionDetail = useVersion(strategyId || undefined, chosenVersion);
  const tunables = ((versionDetail.data?.graph as { parameters?: Record<string, Tunable> } | undefined)?.parameters ??
    {}) as Record<string, Tunable>;

  const [symbol, setSymbol] = useState("");
  const [timeframe, setTimeframe] = useState<Timeframe>("1h");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [typedParams, setTypedParams] = useState<Record<string, string>>({});
  const [ranges, setRanges] = useState<Record<string, SweepRange>>({});
  const [method, setMethod] = useState<"grid" | "random">("grid");
  const [samples, setSamples] = useState("100");
  const [walk, setWalk] = useState<WalkForwardFields>({ enabled: false, train: "500", test: "100", step: "" });
  const [metric, setMetric] = useState("sharpe");
  const [capital, setCapital] = useState("100000");
  const [config, setConfig] = useState({
    fee_bps: "0",
    fee_fixed: "0",
    slippage_bps: "0",
    allow_short: true,
    units: "auto" as NonNullable<BacktestConfig["units"]>,
    calendar: "auto" as NonNullable<BacktestConfig["calendar"]>,
  });

  // Defaults once the lists arrive: the first strategy, the first symbol, a timeframe it has.
  useEffect(() => {
    if (strategyId === "" && strategies.data?.data[0]) setStrategyId(strategies.data.data[0].id);
  }, [strategyId, strategies.data]);
  const choices = useMemo(() => symbolChoices(symbols.data?.symbols ?? []), [symbols.data]);
  const symbolInfo = choices.find((s) => s.symbol === symbol);
  useEffect(() => {
    const first = choices[0];
    if (symbol === "" && first) setSymbol(first.symbol);
  }, [symbol, choices]);
  const series = symbolInfo?.timeframes.find((t) => t.timeframe === timeframe);
  useEffect(() => {
    if (symbolInfo && !series && symbolInfo.timeframes[0]) setTimeframe(symbolInfo.timeframes[0].timeframe);
  }, [symbolInfo, series]);
  useEffect(() => {
    if (series && kind !== "session") {
      const r = defaultRange(series.first, series.last);
      setFrom(r.from);
      setTo(r.to);
    }
  }, [series, kind]);
  const tunableKey = Object.keys(tunables).join(",");
  useEffect(() => {
    setTypedParams({});
    setRanges(Object.fromEntries(Object.entries(tunables).map(([k, t]) => [k, defaultSweepRange(t)])));
    // keyed by the tunables' names: `tunables` is a new object on every render
    // eslint-disable-next-line react-hooks/exhaustive-deps -- see the line above
  }, [tunableKey, chosenVersion, strategyId]);

  const values = paramValues(tunables, typedParams);
  const space = sweepSpace(ranges);
  const walkForward = walkForwardSpec(walk);
  const range = kind === "session" ? null : dateRange(from, to);
  const numbers = {
    fee_bps: Number(config.fee_bps),
    fee_fixed: Number(config.fee_fixed),
    slippage_bps: Number(config.slippage_bps),
    capital: Number(capital),
  };
  const problems: string[] = [];
  if (!strategyId) problems.push("choose a strategy");
  if (strategyId && versions.data && runnable.length === 0) problems.push("this strategy has no runnable version (fix its draft first)");
  if (!symbol) problems.push("choose a symbol");
  if (kind !== "session" && range === null) problems.push("choose a date range (from on or before to)");
  if (Object.values(numbers).some((n) => !Number.isFinite(n) || n < 0)) problems.push("fees, slippage and capital are numbers ≥ 0");
  if (!(numbers.capital > 0)) problems.push("the capital must be above 0");
  if (kind !== "sweep" && Object.keys(values.errors).length > 0) problems.push("a parameter value is not valid");
  if (kind === "sweep") {
    if (Object.keys(space.errors).length > 0) problems.push("a parameter range is not valid");
    if (space.combinations === 0) problems.push("sweep at least one parameter");
    if (method === "grid" && space.combinations > MAX_COMBINATIONS)
      problems.push(`the grid has ${space.combinations.toLocaleString()} combinations; at most ${MAX_COMBINATIONS.toLocaleString()}`);
    if (method === "random" && !(Number(samples) >= 1 && Number(samples) <= MAX_COMBINATIONS))
      problems.push(`samples: 1 to ${MAX_COMBINATIONS.toLocaleString()}`);
    if (walkForward.error) problems.push(walkForward.error);
  }

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length > 0 || chosenVersion === undefined) return;
    const cfg: BacktestConfig = {
      fee_bps: numbers.fee_bps,
      fee_fixed: numbers.fee_fixed,
      slippage_bps: numbers.slippage_bps,
      allow_short: config.allow_short,
      units: config.units,
      calendar: config.calendar,
    };
    const request: RunRequest = { strategy_id: strategyId, version: chosenVersion, symbol, timeframe, params: values.params, config: cfg };
    if (kind === "session") request.capital = numbers.capital;
    else {
      cfg.initial_capital = numbers.capital;
      request.start = range!.start;
      request.end = range!.end;
    }
    if (kind === "sweep") {
      request.params = {};
      request.metric = metric;
      request.search = { method, parameters: space.parameters, ...(method === "random" ? { samples: Number(samples) } : {}) };
      if (walkForward.spec) request.walk_forward = walkForward.spec;
    }
    onSubmit(request);
  };

  if (strategies.error) return <ErrorBox error={strategies.error} onRetry={() => void strategies.refetch()} />;
  if (strategies.isPending) return <Loading what="your strategies" />;
  if (strategies.data.data.length === 0) return <p className="muted">You have no strategy yet: create one first.</p>;

  return (
    <form className="run-form card" onSubmit={submit} aria-label={`${kind} form`}>
      <fieldset>
        <legend>What to run</legend>
        <Field label="Strategy">
          <select name="strategy" value={strategyId} onChange={(e) => (setStrategyId(e.target.value), setVersion(undefined))}>
            {strategies.data.data.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Version">
          <select
            name="version"
            value={chosenVersion ?? ""}
            onChange={(e) => setVersion(Number(e.target.value))}
            disabled={runnable.length === 0}
          >
            {runnable.map((v) => (
              <option key={v.n} value={v.n}>
                v{v.n} ({new Date(v.created_at).toLocaleDateString()})
              </option>
            ))}
          </select>
        </Field>
        {versions.error && <ErrorBox error={versions.error} onRetry={() => void versions.refetch()} />}
        <Field label="Symbol">
          <select name="symbol" value={symbol} onChange={(e) => setSymbol(e.target.value)}>
            {choices.map((s) => (
              <option key={s.symbol} value={s.symbol}>
                {s.symbol}
                {s.access !== "owner" ? ` (${s.access})` : ""}
              </option>
            ))}
          </select>
        </Field>
        {symbols.error && <ErrorBox error={symbols.error} onRetry={() => void symbols.refetch()} />}
        {symbols.data && symbols.data.symbols.length === 0 && (
          <p className="muted">No market data yet: import bars first (docs/market-data.md).</p>
        )}
        <Field label="Timeframe">
          <select name="timeframe" value={timeframe} onChange={(e) => setTimeframe(e.target.value as Timeframe)}>
            {TIMEFRAMES.map((tf) => (
              <option key={tf} value={tf} disabled={symbolInfo !== undefined && !symbolInfo.timeframes.some((t) => t.timeframe === tf)}>
                {tf}
              </option>
            ))}
          </select>
        </Field>
        {series && (
          <p className="muted small">
            {series.count.toLocaleString()} bars from {series.first.slice(0, 10)} to {series.last.slice(0, 10)} (UTC)
          </p>
        )}
        {kind !== "session" && (
          <div className="field-row">
            <Field label="From">
              <input type="date" name="from" value={from} onChange={(e) => setFrom(e.target.value)} required />
            </Field>
            <Field label="To (included)">
              <input type="date" name="to" value={to} onChange={(e) => setTo(e.target.value)} required />
            </Field>
          </div>
        )}
      </fieldset>

      {kind !== "sweep" ? (
        <fieldset>
          <legend>Parameters</legend>
          {versionDetail.isPending && chosenVersion !== undefined && <Loading what="the version" />}
          {versionDetail.error && <ErrorBox error={versionDetail.error} onRetry={() => void versionDetail.refetch()} />}
          {Object.keys(tunables).length === 0 && versionDetail.data && <p className="muted small">This version declares no tunable parameters.</p>}
          {Object.entries(tunables).map(([name, t]) => (
            <Field key={name} label={name} hint={`${t.min}…${t.max}${t.doc ? `: ${t.doc}` : ""}`} error={values.errors[name]}>
              <input
                name={`param-${name}`}
                inputMode="decimal"
                placeholder={String(t.default)}
                value={typedParams[name] ?? ""}
                aria-invalid={values.errors[name] !== undefined}
                onChange={(e) => setTypedParams({ ...typedParams, [name]: e.target.value })}
              />
            </Field>
          ))}
        </fieldset>
      ) : (
        <fieldset>
          <legend>Sweep</legend>
          {versionDetail.error && <ErrorBox error={versionDetail.error} onRetry={() => void versionDetail.refetch()} />}
          {Object.keys(tunables).length === 0 && versionDetail.data && (
            <p className="muted small">This version declares no tunable parameters: there is nothing to sweep.</p>
          )}
          {Object.keys(ranges).length > 0 && (
            <table className="table sweep-ranges">
              <thead>
                <tr>
                  <th>Sweep</th>
                  <th>Parameter</th>
                  <th>Min</th>
                  <th>Max</th>
                  <th>Step</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(ranges).map(([name, r]) => {
                  const set = (patch: Partial<SweepRange>) => setRanges({ ...ranges, [name]: { ...r, ...patch } });
                  return (
                    <tr key={name}>
                      <td>
                        <input type="checkbox" aria-label={`sweep ${name}`} checked={r.enabled} onChange={(e) => set({ enabled: e.target.checked })} />
                      </td>
                      <td>
                        <code>{name}</code>
                        {space.errors[name] && <div className="param-error">{space.errors[name]}</div>}
                      </td>
                      {(["min", "max", "step"] as const).map((k) => (
                        <td key={k}>
                          <input
                            className="narrow"
                            aria-label={`${name} ${k}`}
                            inputMode="decimal"
                            value={r[k]}
                            disabled={!r.enabled}
                            onChange={(e) => set({ [k]: e.target.value })}
                          />
                        </td>
                      ))}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
          <div className="field-row">
            <Field label="Search">
              <select name="method" value={method} onChange={(e) => setMethod(e.target.value as "grid" | "random")}>
                <option value="grid">grid ({space.combinations.toLocaleString()} combinations)</option>
                <option value="random">random sample</option>
              </select>
            </Field>
            {method === "random" && (
              <Field label="Samples">
                <input name="samples" inputMode="numeric" value={samples} onChange={(e) => setSamples(e.target.value)} />
              </Field>
            )}
            <Field label="Rank by">
              <select name="metric" value={metric} onChange={(e) => setMetric(e.target.value)}>
                <MetricOptions />
              </select>
            </Field>
          </div>
          <div className="field-row">
            <label className="checkbox">
              <input
                type="checkbox"
                name="walk_forward"
                checked={walk.enabled}
                onChange={(e) => setWalk({ ...walk, enabled: e.target.checked })}
              />{" "}
              Walk-forward
            </label>
            {walk.enabled && (
              <>
                <Field label="Train (bars)" hint="each fold picks its best combination on these bars">
                  <input name="wf_train" inputMode="numeric" value={walk.train} onChange={(e) => setWalk({ ...walk, train: e.target.value })} />
                </Field>
                <Field label="Test (bars)" hint="…and reports it on the next ones">
                  <input name="wf_test" inputMode="numeric" value={walk.test} onChange={(e) => setWalk({ ...walk, test: e.target.value })} />
                </Field>
                <Field label="Step (bars)" hint="blank: the test length (test windows tile the range)">
                  <input name="wf_step" inputMode="numeric" value={walk.step} onChange={(e) => setWalk({ ...walk, step: e.target.value })} />
                </Field>
              </>
            )}
          </div>
        </fieldset>
      )}

      <fieldset>
        <legend>Execution</legend>
        <div className="field-row">
          <Field label={kind === "session" ? "Capital" : "Initial capital"}>
            <input name="capital" inputMode="decimal" value={capital} onChange={(e) => setCapital(e.target.value)} />
          </Field>
          <Field label="Fee (bps)">
            <input name="fee_bps" inputMode="decimal" value={config.fee_bps} onChange={(e) => setConfig({ ...config, fee_bps: e.target.value })} />
          </Field>
          <Field label="Fixed fee">
            <input name="fee_fixed" inputMode="decimal" value={config.fee_fixed} onChange={(e) => setConfig({ ...config, fee_fixed: e.target.value })} />
          </Field>
          <Field label="Slippage (bps)">
            <input
              name="slippage_bps"
              inputMode="decimal"
              value={config.slippage_bps}
              onChange={(e) => setConfig({ ...config, slippage_bps: e.target.value })}
            />
          </Field>
        </div>
        <div className="field-row">
          <Field label="Units">
            <select name="units" value={config.units} onChange={(e) => setConfig({ ...config, units: e.target.value as typeof config.units })}>
              <option value="auto">auto</option>
              <option value="whole">whole</option>
              <option value="fractional">fractional</option>
            </select>
          </Field>
          <Field label="Calendar">
            <select
              name="calendar"
              value={config.calendar}
              onChange={(e) => setConfig({ ...config, calendar: e.target.value as typeof config.calendar })}
            >
              <option value="auto">auto</option>
              <option value="24x7">24x7</option>
              <option value="xnys">xnys (US equities)</option>
            </select>
          </Field>
          <label className="checkbox">
            <input type="checkbox" name="allow_short" checked={config.allow_short} onChange={(e) => setConfig({ ...config, allow_short: e.target.checked })} />
            Allow short
          </label>
        </div>
      </fieldset>

      {error !== null && error !== undefined && <ErrorBox error={error} />}
      {problems.length > 0 && (
        <ul className="form-problems" aria-label="What is missing">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      <div className="form-actions">
        <button type="submit" className="primary" data-testid="run-submit" disabled={submitting || problems.length > 0}>
          {submitting ? "Starting…" : kind === "backtest" ? "Run backtest" : kind === "sweep" ? "Run sweep" : "Start session"}
        </button>
      </div>
    </form>
  );
}

function Field({ label, hint, error, children }: { label: string; hint?: string; error?: string; children: ReactNode }) {
  return (
    <label className="field">
      <span className="field-label">{label}</span>
      {children}
      {hint && <span className="field-hint">{hint}</span>}
      {error && <span className="param-error">{error}</span>}
    </label>
  );
}
