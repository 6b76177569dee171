/** A run's status as a coloured badge, and its progress as a bar. */

const TONE: Record<string, string> = {
  queued: "status-waiting",
  running: "status-running",
  completed: "status-ok",
  paused: "status-waiting",
  stopped: "status-muted",
  cancelled: "status-muted",
  failed: "status-error",
};

export function StatusBadge({ status, testId = "run-status" }: { status: string; testId?: string }) {
  return (
    <span className={`status ${TONE[status] ?? ""}`} data-testid={testId} role="status">
      {status}
    </span>
  );
}

export function ProgressBar({ value, label = "Progress" }: { value: number; label?: string }) {
  const percent = Math.round(Math.max(0, Math.min(1, value)) * 100);
  return (
    <span className="progress-wrap">
      <progress max={100} value={percent} aria-label={label} data-testid="run-progress" />
      <span className="small muted">{percent} %</span>
    </span>
  );
}
