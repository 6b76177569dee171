/**
 * Your API keys: the list (revoked and expired ones included), a new key limited to some
 * scopes (its secret shown once), and revoking one.
 */
import { useState, type FormEvent } from "react";
import { Link } from "../router";
import { ErrorBox, Loading } from "../ui/ErrorBox";
import { SecretOnce } from "../ui/SecretOnce";
import { boundAgent, keyFormProblems, keyState, RESOURCES } from "./keys";
import { useApiKeys, useCreateApiKey, useRevokeApiKey, type ApiKey } from "./queries";

const day = (iso: string | null) => (iso === null ? "—" : iso.replace("T", " ").slice(0, 16));

export function ApiKeysPage() {
  const keys = useApiKeys();
  const revoke = useRevokeApiKey();
  const [secret, setSecret] = useState<string | null>(null);
  const now = new Date();
  return (
    <div className="page">
      <div className="section-head">
        <h1>API keys</h1>
      </div>
      <p className="muted">
        A key signs in scripts and the SDK (<code>X-API-Key</code>) with the scopes it was given. Agents get their own key when
        they are registered (<Link to="/agents">Agents</Link>).
      </p>
      {secret !== null && <SecretOnce secret={secret} what="API key" onDone={() => setSecret(null)} testId="new-api-key" />}
      <NewKeyForm onCreated={setSecret} />
      <section>
        <h2>Your keys</h2>
        {keys.error && <ErrorBox error={keys.error} onRetry={() => void keys.refetch()} />}
        {revoke.error && <ErrorBox error={revoke.error} />}
        {keys.isPending ? (
          <Loading what="your API keys" />
        ) : keys.data && keys.data.data.length === 0 ? (
          <p className="muted">No API keys yet.</p>
        ) : (
          keys.data && (
            <table className="table" data-testid="api-keys-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Key</th>
                  <th>Scopes</th>
                  <th>Created (UTC)</th>
                  <th>Last used</th>
                  <th>Expires</th>
                  <th>State</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {keys.data.data.map((k) => {
                  const state = keyState(k, now);
                  const agent = boundAgent(k.scopes);
                  return (
                    <tr key={k.id} data-testid={`api-key-${k.id}`} className={state === "active" ? "" : "muted"}>
                      <td>
                        {k.name}
                        {agent && (
                          <div className="small">
                            for agent <Link to={`/agents/${agent}`}>{agent}</Link>
                          </div>
                        )}
                      </td>
                      <td>
                        <code>{k.prefix}…</code>
                      </td>
                      <td className="small">{k.scopes.filter((s) => !s.startsWith("agent:")).join(", ")}</td>
                      <td className="small">{day(k.created_at)}</td>
                      <td className="small">{day(k.last_used_at)}</td>
                      <td className="small">{k.expires_at === null ? "never" : day(k.expires_at)}</td>
                      <td>
                        <span className={`status ${state === "active" ? "status-ok" : "status-muted"}`} data-testid={`api-key-state-${k.id}`}>
                          {state}
                        </span>
                      </td>
                      <td>
                        {state === "active" && (
                          <button
                            type="button"
                            className="danger"
                            aria-label={`Revoke ${k.name}`}
                            data-testid={`revoke-${k.id}`}
                            disabled={revoke.isPending}
                            onClick={() => confirmRevoke(k) && revoke.mutate(k)}
                          >
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        )}
      </section>
    </div>
  );
}

function confirmRevoke(key: ApiKey): boolean {
  const agent = boundAgent(key.scopes);
  return window.confirm(
    `Revoke “${key.name}”? Requests with it fail from now on${agent ? "; its agent will be disconnected" : ""}. This cannot be undone.`,
  );
}

function NewKeyForm({ onCreated }: { onCreated: (secret: string) => void }) {
  const create = useCreateApiKey();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Set<string>>(new Set());
  const [expires, setExpires] = useState("");
  const problems = keyFormProblems(name, scopes, expires);
  const toggle = (scope: string, on: boolean) =>
    setScopes((s) => {
      const next = new Set(s);
      if (on) next.add(scope);
      else next.delete(scope);
      return next;
    });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length > 0) return;
    create.mutate(
      { name: name.trim(), scopes: [...scopes], expires_in_days: expires.trim() === "" ? null : Number(expires) },
      {
        onSuccess: (created) => {
          onCreated(created.key);
          setName("");
          setScopes(new Set());
          setExpires("");
        },
      },
    );
  };
  const scopeBox = (scope: string) => (
    <label className="checkbox" key={scope}>
      <input type="checkbox" checked={scopes.has(scope)} onChange={(e) => toggle(scope, e.target.checked)} aria-label={scope} />
      {scope.split(":")[1]}
    </label>
  );
  return (
    <form className="run-form" onSubmit={submit} aria-label="New API key" data-testid="new-api-key-form">
      <fieldset>
        <legend>New key</legend>
        <label className="field">
          <span className="field-label">Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} maxLength={100} aria-label="Key name" placeholder="e.g. research notebook" />
        </label>
        <label className="field">
          <span className="field-label">Expires after (days)</span>
          <input value={expires} onChange={(e) => setExpires(e.target.value)} inputMode="numeric" aria-label="Expires after days" placeholder="never" className="narrow" />
        </label>
        <table className="table scope-table" aria-label="Scopes">
          <tbody>
            {RESOURCES.map((r) => (
              <tr key={r}>
                <th scope="row">{r}</th>
                <td>{scopeBox(`${r}:read`)}</td>
                <td>{scopeBox(`${r}:write`)}</td>
              </tr>
            ))}
            <tr>
              <th scope="row">notifications</th>
              <td>{scopeBox("notifications:read")}</td>
              <td />
            </tr>
          </tbody>
        </table>
        {problems.length > 0 && <p className="form-problems">Needs {problems.join(", ")}.</p>}
        {create.error && <ErrorBox error={create.error} />}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={problems.length > 0 || create.isPending} data-testid="create-api-key">
            {create.isPending ? "Creating…" : "Create key"}
          </button>
        </div>
      </fieldset>
    </form>
  );
}
