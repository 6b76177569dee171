/**
 * A secret the API shows once (a new API key, an agent's key): the value, a copy button, and
 * plainly that it will not be shown again. The parent drops it when the user says it is stored.
 */
import { useState } from "react";

export function SecretOnce({ secret, what, onDone, testId = "secret-once" }: { secret: string; what: string; onDone: () => void; testId?: string }) {
  const [copied, setCopied] = useState<"no" | "yes" | "failed">("no");
  const copy = () => {
    const writing = navigator.clipboard?.writeText(secret);
    if (writing === undefined) {
      setCopied("failed");
      return;
    }
    writing.then(
      () => setCopied("yes"),
      () => setCopied("failed"),
    );
  };
  return (
    <div className="secret-once" role="region" aria-label={`New ${what}`} data-testid={testId}>
      <strong>Copy the new {what} now: you will not see it again.</strong>
      <div className="secret-row">
        <input
          readOnly
          value={secret}
          aria-label={`The new ${what}`}
          data-testid={`${testId}-value`}
          onFocus={(e) => e.currentTarget.select()}
          className="secret-value"
        />
        <button type="button" className="primary" onClick={copy} data-testid={`${testId}-copy`}>
          {copied === "yes" ? "Copied" : "Copy"}
        </button>
        <button type="button" onClick={onDone} data-testid={`${testId}-done`}>
          I have stored it
        </button>
      </div>
      {copied === "failed" && <div className="small">The browser would not copy it: select the text and copy it yourself.</div>}
      <div className="small muted">The platform keeps only a hash of it; a lost {what} cannot be shown again, only replaced.</div>
    </div>
  );
}
