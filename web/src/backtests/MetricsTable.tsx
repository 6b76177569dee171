/** A run's metrics (a backtest's summary, a session's metrics) as a two-column table. */
import { formatMetric, metricLabel, metricRows } from "./metrics";

export function MetricsTable({ summary }: { summary: Record<string, unknown> | null | undefined }) {
  const rows = metricRows(summary);
  if (rows.length === 0) return <p className="muted">No metrics.</p>;
  return (
    <table className="table metrics-table" data-testid="metrics-table" aria-label="Metrics">
      <tbody>
        {rows.map(([key, value]) => (
          <tr key={key}>
            <th scope="row">{metricLabel(key)}</th>
            <td className="num" data-metric={key}>
              {formatMetric(key, value)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
