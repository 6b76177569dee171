/** Any failed request shown as its problem: title, detail, each listed error, request id. */
import type { ReactNode } from "react";
import { asProblem, isNotFound } from "../api/problem";

export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const problem = asProblem(error);
  const errors = (problem.errors ?? []) as Record<string, unknown>[];
  return (
    <div className="error-box" role="alert">
      <strong>{problem.title}</strong>
      {problem.detail && <div>{problem.detail}</div>}
      {errors.length > 0 && (
        <ul>
          {errors.slice(0, 20).map((e, i) => (
            <li key={i}>
              {Array.isArray(e.loc) && <code>{(e.loc as unknown[]).join(".")}</code>}{" "}
              {String(e.message ?? e.msg ?? JSON.stringify(e))}
            </li>
          ))}
        </ul>
      )}
      {problem.request_id && <small>request id {problem.request_id}</small>}
      {onRetry && (
        <div>
          <button type="button" onClick={onRetry}>
            Try again
          </button>
        </div>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return <div className="loading">Loading {what}…</div>;
}

/** A page whose one resource failed to load: its problem (a retry unless it does not exist) and a way back. */
export function PageLoadError({ error, retry, back }: { error: unknown; retry: () => unknown; back: ReactNode }) {
  return (
    <div className="page">
      <ErrorBox error={error} onRetry={isNotFound(error) ? undefined : () => void retry()} />
      {back}
    </div>
  );
}
