/** The metrics a sweep can rank by, as a select's options (in table order, the lower-is-better ones said so). */
import { LOWER_IS_BETTER, METRIC_ORDER, metricLabel } from "./metrics";

export function MetricOptions() {
  return (
    <>
      {METRIC_ORDER.map((m) => (
        <option key={m} value={m}>
          {metricLabel(m)}
          {LOWER_IS_BETTER.has(m) ? " (lower is better)" : ""}
        </option>
      ))}
    </>
  );
}
