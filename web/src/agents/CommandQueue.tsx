/**
 * An agent's commands: a form to queue one, and the agent's command list from
 * `GET /api/agents/{id}/queue` (queued, leased and ended commands, newest first, filtered by
 * state, older pages on demand), polled every few seconds. The list is the owner's read-only
 * view: unlike the agent's own poll it leases nothing. A command's pushed outcome (under the
 * notification cutover) shows at once, written into that command's own query.
 */
import { useState, type FormEvent } from "react";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import {
  commandBody,
  commandOutcome,
  commandProblems,
  commandSummary,
  commandTone,
  EMPTY_COMMAND,
  QUEUE_FILTERS,
  type CommandDraft,
  type QueueFilter,
} from "./agents";
import { AGENT_POLL_MS, useAgentQueue, useListedCommands, useQueueCommand, type AgentCommand } from "./queries";

const time = (ms: number | null | undefined) => (ms === null || ms === undefined ? "—" : new Date(ms).toLocaleTimeString());

export function CommandQueue({ agentId }: { agentId: string }) {
  const [filter, setFilter] = useState<QueueFilter>("all");
  const queue = useAgentQueue(agentId, QUEUE_FILTERS[filter]);
  const commands = useListedCommands(agentId, queue.data?.pages.flatMap((page) => page.items) ?? []);
  return (
    <section>
      <h2>Commands</h2>
      <QueueForm agentId={agentId} />
      <div className="section-head">
        <h3>Queue</h3>
        <label className="field">
          <span className="field-label">Show</span>
          <select value={filter} onChange={(e) => setFilter(e.target.value as QueueFilter)} aria-label="Commands shown" data-testid="agent-commands-filter">
            {Object.keys(QUEUE_FILTERS).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <span className="muted small">newest first, refreshed every {AGENT_POLL_MS / 1000} s</span>
      </div>
      {queue.error && <ErrorBox error={queue.error} onRetry={() => void queue.refetch()} />}
      {queue.isPending ? (
        <Loading what="the commands" />
      ) : commands.length === 0 ? (
        <p className="muted">{filter === "all" ? "No command queued for this agent in the last 7 days." : `No ${filter} command.`}</p>
      ) : (
        <CommandTable commands={commands} />
      )}
      {queue.hasNextPage && (
        <div className="form-actions">
          <button type="button" disabled={queue.isFetchingNextPage} onClick={() => void queue.fetchNextPage()} data-testid="agent-commands-older">
            {queue.isFetchingNextPage ? "Loading…" : "Older commands"}
          </button>
        </div>
      )}
    </section>
  );
}

function CommandTable({ commands }: { commands: AgentCommand[] }) {
  return (
    <table className="table" data-testid="agent-commands">
      <thead>
        <tr>
          <th>Command</th>
          <th>Kind</th>
          <th>State</th>
          <th className="num">Attempts</th>
          <th>Details</th>
          <th>Queued</th>
          <th>Leased</th>
          <th>Ended</th>
          <th>Result</th>
        </tr>
      </thead>
      <tbody>
        {commands.map((c) => (
          <tr key={c.id} data-testid={`command-${c.id}`}>
            <td>
              <code>{c.id}</code>
              {c.session_id && <div className="muted small">session {c.session_id}</div>}
            </td>
            <td>{c.kind}</td>
            <td>
              <span className={`status ${commandTone(c.state)}`} data-testid={`command-state-${c.id}`}>
                {c.state}
              </span>
            </td>
            <td className="num">{c.attempts}</td>
            <td className="small">{commandSummary(c)}</td>
            <td className="small">{time(c.created_at_ms)}</td>
            <td className="small">{time(c.leased_at_ms)}</td>
            <td className="small">{time(c.ended_at_ms)}</td>
            <td className="small">{commandOutcome(c)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function QueueForm({ agentId }: { agentId: string }) {
  const queue = useQueueCommand(agentId);
  const [draft, setDraft] = useState<CommandDraft>(EMPTY_COMMAND);
  const problems = commandProblems(draft);
  const set = (patch: Partial<CommandDraft>) => setDraft((d) => ({ ...d, ...patch }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length > 0) return;
    if ((draft.kind === "open" || draft.kind === "close_all") && !window.confirm(`Send “${draft.kind}” to the terminal? It trades the real account.`)) return;
    queue.mutate(commandBody(draft), {
      onSuccess: () => {
        setDraft((d) => ({ ...EMPTY_COMMAND, kind: d.kind }));
      },
    });
  };
  const k = draft.kind;
  return (
    <form className="run-form" onSubmit={submit} aria-label="Queue a command" data-testid="queue-command-form">
      <fieldset>
        <legend>Queue a command</legend>
        <label className="field">
          <span className="field-label">Kind</span>
          <select value={k} onChange={(e) => set({ kind: e.target.value as CommandDraft["kind"] })} aria-label="Command kind">
            <option value="info">info (a message)</option>
            <option value="open">open</option>
            <option value="modify">modify</option>
            <option value="close">close</option>
            <option value="close_all">close all</option>
          </select>
        </label>
        {k === "open" && (
          <>
            <label className="field">
              <span className="field-label">Symbol</span>
              <input value={draft.symbol} onChange={(e) => set({ symbol: e.target.value })} aria-label="Command symbol" />
            </label>
            <label className="field">
              <span className="field-label">Side</span>
              <select value={draft.side} onChange={(e) => set({ side: e.target.value as CommandDraft["side"] })} aria-label="Side">
                <option value="buy">buy</option>
                <option value="sell">sell</option>
              </select>
            </label>
            <label className="field">
              <span className="field-label">Volume</span>
              <input value={draft.volume} onChange={(e) => set({ volume: e.target.value })} aria-label="Volume" className="narrow" inputMode="decimal" />
            </label>
          </>
        )}
        {(k === "close" || k === "modify") && (
          <label className="field">
            <span className="field-label">Ticket</span>
            <input value={draft.ticket} onChange={(e) => set({ ticket: e.target.value })} aria-label="Ticket" />
          </label>
        )}
        {(k === "open" || k === "modify") && (
          <>
            <label className="field">
              <span className="field-label">Stop loss</span>
              <input value={draft.sl} onChange={(e) => set({ sl: e.target.value })} aria-label="Stop loss" className="narrow" inputMode="decimal" />
            </label>
            <label className="field">
              <span className="field-label">Take profit</span>
              <input value={draft.tp} onChange={(e) => set({ tp: e.target.value })} aria-label="Take profit" className="narrow" inputMode="decimal" />
            </label>
          </>
        )}
        {k === "info" && (
          <label className="field grow">
            <span className="field-label">Message</span>
            <input value={draft.message} onChange={(e) => set({ message: e.target.value })} aria-label="Message" maxLength={1000} />
          </label>
        )}
        {problems.length > 0 && <p className="form-problems">Needs {problems.join(", ")}.</p>}
        {queue.error && <ErrorBox error={queue.error} />}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={problems.length > 0 || queue.isPending} data-testid="queue-command">
            {queue.isPending ? "Queueing…" : "Queue"}
          </button>
        </div>
      </fieldset>
    </form>
  );
}
