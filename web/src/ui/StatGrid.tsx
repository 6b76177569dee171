/** A grid of labelled figures (a session's account, an agent's connection, the agents' status). */

/** [label, value, test id of the value] */
export type Stat = [string, string, string?];

export function StatGrid({ label, stats, testId }: { label: string; stats: Stat[]; testId?: string }) {
  return (
    <div className="stat-grid" aria-label={label} data-testid={testId}>
      {stats.map(([name, value, valueTestId]) => (
        <div key={name} className="stat">
          <div className="stat-label">{name}</div>
          <div className="stat-value" data-testid={valueTestId}>
            {value}
          </div>
        </div>
      ))}
    </div>
  );
}
