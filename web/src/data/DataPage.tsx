/**
 * Market data: the symbols you can read with the bars each timeframe holds, a timeframe's gap
 * report, CSV/Parquet imports (upload progress, then the import job's), and replays.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { unwrap } from "../api/client";
import { ApiError } from "../api/problem";
import { useApi, useSession } from "../auth/session";
import { TIMEFRAMES, type Timeframe } from "../backtests/form";
import { useSymbols } from "../backtests/queries";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { ProgressBar, StatusBadge } from "../ui/Status";
import {
  coverage,
  fileFormat,
  formatBytes,
  importActive,
  importProblems,
  replayBody,
  replayProblems,
  replayProgress,
  type ImportJob,
  type ReplayDraft,
} from "./data";
import { useGaps, useImport, useImports, useReplays, useStartReplay, useStopReplay } from "./queries";
import { upload } from "./upload";

const utc = (iso: string | null) => (iso === null ? "—" : iso.replace("T", " ").slice(0, 16));

interface Selected {
  symbol: string;
  owner: string | null;
  timeframe: Timeframe;
}

export default function DataPage() {
  const [selected, setSelected] = useState<Selected | null>(null);
  return (
    <div className="page page-wide">
      <div className="section-head">
        <h1>Market data</h1>
      </div>
      <Symbols selected={selected} onSelect={setSelected} />
      {selected && <Gaps key={`${selected.symbol}/${selected.owner}/${selected.timeframe}`} {...selected} onClose={() => setSelected(null)} />}
      <Imports />
      <Replays />
    </div>
  );
}

function Symbols({ selected, onSelect }: { selected: Selected | null; onSelect: (s: Selected) => void }) {
  const symbols = useSymbols();
  return (
    <section>
      <h2>Symbols</h2>
      {symbols.error && <ErrorBox error={symbols.error} onRetry={() => void symbols.refetch()} />}
      {symbols.isPending ? (
        <Loading what="the symbols" />
      ) : symbols.data && symbols.data.symbols.length === 0 ? (
        <p className="muted">No market data yet: import a file below.</p>
      ) : (
        symbols.data && (
          <div className="table-scroll">
            <table className="table" data-testid="symbols-table">
              <thead>
                <tr>
                  <th>Symbol</th>
                  <th>Whose</th>
                  <th>Timeframe</th>
                  <th className="num">Bars</th>
                  <th>First (UTC)</th>
                  <th>Last (UTC)</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {symbols.data.symbols.flatMap((s) =>
                  s.timeframes.map((t, i) => {
                    const isSelected = selected?.symbol === s.symbol && selected.owner === s.owner && selected.timeframe === t.timeframe;
                    return (
                      <tr key={`${s.symbol}/${s.owner}/${t.timeframe}`} className={isSelected ? "selected-row" : ""}>
                        <td>{i === 0 && <strong>{s.symbol}</strong>}</td>
                        <td className="small">{i === 0 && (s.access === "owner" ? "yours" : s.access === "shared" ? "shared with you" : "platform")}</td>
                        <td>{t.timeframe}</td>
                        <td className="num">{t.count.toLocaleString()}</td>
                        <td className="small">{utc(t.first)}</td>
                        <td className="small">{utc(t.last)}</td>
                        <td>
                          <button
                            type="button"
                            aria-label={`Gaps of ${s.symbol} ${t.timeframe}`}
                            data-testid={`gaps-${s.symbol}-${t.timeframe}`}
                            onClick={() => onSelect({ symbol: s.symbol, owner: s.owner, timeframe: t.timeframe })}
                          >
                            Gaps
                          </button>
                        </td>
                      </tr>
                    );
                  }),
                )}
              </tbody>
            </table>
          </div>
        )
      )}
    </section>
  );
}

function Gaps({ symbol, owner, timeframe, onClose }: Selected & { onClose: () => void }) {
  const gaps = useGaps(symbol, owner, timeframe);
  const r = gaps.data;
  return (
    <section className="card" aria-label={`Gaps of ${symbol} ${timeframe}`} data-testid="gap-report">
      <div className="section-head">
        <h2>
          Gaps of {symbol} {timeframe}
        </h2>
        <button type="button" onClick={onClose} aria-label="Close the gap report">
          Close
        </button>
      </div>
      {gaps.error && <ErrorBox error={gaps.error} onRetry={() => void gaps.refetch()} />}
      {gaps.isPending ? (
        <Loading what="the gap report" />
      ) : (
        r && (
          <>
            <p className="facts">
              <span>
                {utc(r.start)} → {utc(r.end)} UTC
              </span>
              <span>calendar {r.calendar}</span>
              <span data-testid="gap-coverage">
                {(coverage(r) * 100).toFixed(2)} % covered ({r.present.toLocaleString()} of {r.expected.toLocaleString()} bars)
              </span>
              <span>{r.missing.toLocaleString()} missing</span>
              {r.unexpected > 0 && <span>{r.unexpected.toLocaleString()} outside the calendar</span>}
            </p>
            {r.gaps.length === 0 ? (
              <p className="muted">No gaps: every bar the calendar expects is there.</p>
            ) : (
              <div className="table-scroll">
                <table className="table" data-testid="gaps-table">
                  <thead>
                    <tr>
                      <th>From (UTC)</th>
                      <th>To (exclusive)</th>
                      <th className="num">Missing bars</th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.gaps.map((g) => (
                      <tr key={g.start}>
                        <td>{utc(g.start)}</td>
                        <td>{utc(g.end)}</td>
                        <td className="num">{g.missing.toLocaleString()}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {r.truncated && <p className="muted small">The report lists the first gaps only.</p>}
            {r.recorded.length > 0 && (
              <>
                <h3>Recorded by the feeds</h3>
                <ul className="small">
                  {r.recorded.map((g, i) => (
                    <li key={i}>
                      {utc(g.start)} → {utc(g.end)}: {g.reason} ({g.source}){g.detail ? `, ${g.detail}` : ""}
                    </li>
                  ))}
                </ul>
              </>
            )}
          </>
        )
      )}
    </section>
  );
}

function Imports() {
  const api = useApi();
  const { tokens } = useSession();
  const client = useQueryClient();
  const imports = useImports();
  const [file, setFile] = useState<File | null>(null);
  const [symbol, setSymbol] = useState("");
  const [timeframe, setTimeframe] = useState<Timeframe>("1m");
  const [atomic, setAtomic] = useState(false);
  const [sent, setSent] = useState<{ sent: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  const abort = useRef<(() => void) | null>(null);
  const job = useImport(jobId);
  const problems = importProblems(file, symbol, timeframe);
  const uploading = sent !== null;

  useEffect(() => () => abort.current?.(), []);
  useEffect(() => {
    if (job.data && !importActive(job.data.state)) {
      void client.invalidateQueries({ queryKey: ["imports"] });
      void client.invalidateQueries({ queryKey: ["symbols"] });
    }
  }, [job.data, client]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (problems.length > 0 || file === null) return;
    const body = new FormData();
    body.set("symbol", symbol.trim());
    body.set("timeframe", timeframe);
    body.set("atomic", String(atomic));
    const format = fileFormat(file.name);
    if (format !== null) body.set("format", format);
    body.set("file", file);
    setError(null);
    setJobId(null);
    setSent({ sent: 0, total: file.size });
    const send = () => {
      const u = upload<ImportJob>("/api/market/imports", body, tokens.access(), (s, t) => setSent({ sent: s, total: t || file.size }));
      abort.current = u.abort;
      return u.done;
    };
    try {
      // any authenticated request renews an expired access token first
      await unwrap(api.GET("/api/auth/me"));
      let created: ImportJob;
      try {
        created = await send();
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) throw err;
        await unwrap(api.GET("/api/auth/me")); // the token expired during the upload: renew and send again
        created = await send();
      }
      client.setQueryData(["import", created.id], created);
      setJobId(created.id);
      void client.invalidateQueries({ queryKey: ["imports"] });
    } catch (err) {
      setError(err);
    } finally {
      abort.current = null;
      setSent(null);
    }
  };

  return (
    <section>
      <h2>Import a file</h2>
      <form className="run-form" onSubmit={(e) => void submit(e)} aria-label="Import a file" data-testid="import-form">
        <fieldset>
          <legend>CSV or Parquet bars</legend>
          <label className="field">
            <span className="field-label">File</span>
            <input type="file" accept=".csv,.gz,.txt,.parquet,.pq" aria-label="File" data-testid="import-file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
            {file && (
              <span className="field-hint">
                {formatBytes(file.size)} · {fileFormat(file.name) ?? "format detected by content"}
              </span>
            )}
          </label>
          <label className="field">
            <span className="field-label">Symbol</span>
            <input value={symbol} onChange={(e) => setSymbol(e.target.value)} aria-label="Import symbol" placeholder="e.g. EURUSD" />
          </label>
          <label className="field">
            <span className="field-label">Timeframe</span>
            <select value={timeframe} onChange={(e) => setTimeframe(e.target.value as Timeframe)} aria-label="Import timeframe">
              {TIMEFRAMES.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <label className="checkbox">
            <input type="checkbox" checked={atomic} onChange={(e) => setAtomic(e.target.checked)} />
            all or nothing (one bad row stores nothing)
          </label>
          <p className="muted small">Columns are matched by name (time, open, high, low, close, volume); times without an offset are UTC.</p>
          {problems.length > 0 && !uploading && <p className="form-problems">Needs {problems.join(", ")}.</p>}
          {error !== null && <ErrorBox error={error} />}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={problems.length > 0 || uploading} data-testid="import-submit">
              {uploading ? "Uploading…" : "Import"}
            </button>
            {uploading && (
              <button type="button" onClick={() => abort.current?.()} data-testid="import-cancel">
                Cancel upload
              </button>
            )}
          </div>
          {sent && (
            <div data-testid="upload-progress">
              Upload <ProgressBar value={sent.total > 0 ? sent.sent / sent.total : 0} label="Upload progress" /> <span className="small muted">{formatBytes(sent.sent)} of {formatBytes(sent.total)}</span>
            </div>
          )}
          {job.error && <ErrorBox error={job.error} onRetry={() => void job.refetch()} />}
          {job.data && <ImportOutcome job={job.data} />}
        </fieldset>
      </form>
      <h3>Your imports</h3>
      {imports.error && <ErrorBox error={imports.error} onRetry={() => void imports.refetch()} />}
      {imports.isPending ? (
        <Loading what="your imports" />
      ) : imports.data && imports.data.imports.length === 0 ? (
        <p className="muted">No imports yet.</p>
      ) : (
        imports.data && (
          <div className="table-scroll">
            <table className="table" data-testid="imports-table">
              <thead>
                <tr>
                  <th>File</th>
                  <th>Series</th>
                  <th>State</th>
                  <th className="num">Rows</th>
                  <th className="num">Stored</th>
                  <th className="num">Rejected</th>
                  <th>Started (UTC)</th>
                </tr>
              </thead>
              <tbody>
                {imports.data.imports.map((i) => (
                  <tr key={i.id} data-testid={`import-${i.id}`}>
                    <td>
                      {i.filename}
                      <div className="muted small">
                        {i.format} · {formatBytes(i.bytes_total)}
                      </div>
                    </td>
                    <td>
                      {i.symbol} <span className="muted">{i.timeframe}</span>
                    </td>
                    <td>
                      <StatusBadge status={i.state} testId={`import-state-${i.id}`} />
                      {importActive(i.state) && <ProgressBar value={i.progress} label="Import progress" />}
                      {i.message && <div className="small">{i.message}</div>}
                    </td>
                    <td className="num">{i.rows_read.toLocaleString()}</td>
                    <td className="num">{i.accepted.toLocaleString()}</td>
                    <td className="num">{i.rows_rejected.toLocaleString()}</td>
                    <td className="small">{utc(i.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      )}
    </section>
  );
}

function ImportOutcome({ job }: { job: ImportJob }) {
  return (
    <div className="import-outcome" data-testid="import-job" role="status">
      <div>
        Import <code>{job.id}</code> <StatusBadge status={job.state} testId="import-job-state" />{" "}
        {importActive(job.state) && <ProgressBar value={job.progress} label="Import progress" />}
      </div>
      <div className="small">
        {job.rows_read.toLocaleString()} rows read: {job.accepted.toLocaleString()} stored, {job.duplicate.toLocaleString()} already there,{" "}
        {job.corrected.toLocaleString()} corrected, {job.rows_rejected.toLocaleString()} rejected
      </div>
      {job.state === "failed" && (
        <div className="error-box" role="alert">
          <strong>The import failed</strong>
          <div>{job.message ?? "no reason was recorded"}</div>
        </div>
      )}
      {job.errors.length > 0 && (
        <details>
          <summary>Rejected rows ({job.errors.length} shown)</summary>
          <ul className="small">
            {job.errors.map((e, i) => (
              <li key={i}>
                line {String(e.line ?? "?")}: {String(e.reason ?? "")} {e.message ? `(${String(e.message)})` : ""}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function Replays() {
  const replays = useReplays();
  const symbols = useSymbols();
  const start = useStartReplay();
  const stop = useStopReplay();
  const [draft, setDraft] = useState<ReplayDraft>({ symbol: "", owner: null, timeframe: "1m", from: "", to: "", speed: "60", target: "" });
  const problems = replayProblems(draft);
  const set = (patch: Partial<ReplayDraft>) => setDraft((d) => ({ ...d, ...patch }));
  const series = symbols.data?.symbols ?? [];
  const chosen = series.find((s) => s.symbol === draft.symbol && s.owner === draft.owner);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length === 0) start.mutate(replayBody(draft));
  };
  return (
    <section>
      <h2>Replays</h2>
      <p className="muted small">A replay plays a stored series into a symbol of your own (SYMBOL.R…) bar by bar, for forward tests.</p>
      <form className="run-form" onSubmit={submit} aria-label="Start a replay" data-testid="replay-form">
        <fieldset>
          <legend>Start a replay</legend>
          <label className="field">
            <span className="field-label">Series</span>
            <select
              value={chosen ? `${chosen.symbol}|${chosen.owner ?? ""}` : ""}
              aria-label="Replay series"
              onChange={(e) => {
                const [symbol = "", owner = ""] = e.target.value.split("|");
                const s = series.find((x) => x.symbol === symbol && (x.owner ?? "") === owner);
                set({ symbol, owner: owner === "" ? null : owner, timeframe: s?.timeframes[0]?.timeframe ?? "1m" });
              }}
            >
              <option value="">choose…</option>
              {series.map((s) => (
                <option key={`${s.symbol}|${s.owner ?? ""}`} value={`${s.symbol}|${s.owner ?? ""}`}>
                  {s.symbol} ({s.access === "owner" ? "yours" : s.access === "shared" ? "shared" : "platform"})
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span className="field-label">Timeframe</span>
            <select value={draft.timeframe} onChange={(e) => set({ timeframe: e.target.value as Timeframe })} aria-label="Replay timeframe">
              {(chosen ? chosen.timeframes.map((t) => t.timeframe) : TIMEFRAMES).map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <label className="field">
            <span className="field-label">From (UTC day)</span>
            <input type="date" value={draft.from} onChange={(e) => set({ from: e.target.value })} aria-label="Replay from" />
          </label>
          <label className="field">
            <span className="field-label">To (included)</span>
            <input type="date" value={draft.to} onChange={(e) => set({ to: e.target.value })} aria-label="Replay to" />
          </label>
          <label className="field">
            <span className="field-label">Speed</span>
            <input value={draft.speed} onChange={(e) => set({ speed: e.target.value })} aria-label="Replay speed" className="narrow" />
            <span className="field-hint">simulated seconds per second, or max</span>
          </label>
          <label className="field">
            <span className="field-label">Target symbol</span>
            <input value={draft.target} onChange={(e) => set({ target: e.target.value })} aria-label="Replay target" placeholder="default: SYMBOL.R…" />
          </label>
          {problems.length > 0 && <p className="form-problems">Needs {problems.join(", ")}.</p>}
          {start.error && <ErrorBox error={start.error} />}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={problems.length > 0 || start.isPending} data-testid="replay-start">
              Start replay
            </button>
          </div>
        </fieldset>
      </form>
      {stop.error && <ErrorBox error={stop.error} />}
      {replays.error && <ErrorBox error={replays.error} onRetry={() => void replays.refetch()} />}
      {replays.isPending ? (
        <Loading what="your replays" />
      ) : replays.data && replays.data.replays.length === 0 ? (
        <p className="muted">No replays yet.</p>
      ) : (
        replays.data && (
          <table className="table" data-testid="replays-table">
            <thead>
              <tr>
                <th>Replay</th>
                <th>Into</th>
                <th>State</th>
                <th className="num">Bars</th>
                <th>Speed</th>
                <th>Last bar (UTC)</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {replays.data.replays.map((r) => (
                <tr key={r.id} data-testid={`replay-${r.id}`}>
                  <td>
                    {r.symbol} <span className="muted">{r.timeframe}</span>
                    <div className="muted small">
                      <code>{r.id}</code>
                    </div>
                  </td>
                  <td>
                    <code>{r.target_symbol}</code>
                  </td>
                  <td>
                    <StatusBadge status={r.state} testId={`replay-state-${r.id}`} />
                    {r.state === "running" && <ProgressBar value={replayProgress(r)} label="Replay progress" />}
                    {r.message && <div className="small">{r.message}</div>}
                  </td>
                  <td className="num">
                    {r.bars_emitted.toLocaleString()} / {r.bars_total.toLocaleString()}
                  </td>
                  <td>{r.speed === "max" ? "max" : `${r.speed}×`}</td>
                  <td className="small">{utc(r.last_ts)}</td>
                  <td>
                    {r.state === "running" && (
                      <button type="button" className="danger" aria-label={`Stop replay ${r.id}`} data-testid={`replay-stop-${r.id}`} disabled={stop.isPending} onClick={() => stop.mutate(r.id)}>
                        Stop
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
    </section>
  );
}
