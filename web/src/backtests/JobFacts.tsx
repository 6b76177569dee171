/** What a job ran: symbol, timeframe, range, strategy version, bars and execution config. */
import { Link } from "../router";
import { lastDay } from "./form";
import type { Job } from "./queries";

export function JobFacts({ job }: { job: Job }) {
  return (
    <p className="facts">
      <span>
        {job.symbol} <span className="muted">{job.timeframe}</span>
      </span>
      <span>
        {job.start.slice(0, 10)} → {lastDay(job.end)} <span className="muted">(UTC days)</span>
      </span>
      {job.strategy_id && (
        <span>
          strategy <Link to={`/strategies/${job.strategy_id}${job.version !== null ? `/versions/${job.version}` : ""}`}>v{job.version}</Link>
        </span>
      )}
      {job.bars !== null && <span>{job.bars.toLocaleString()} bars</span>}
      {typeof job.config.initial_capital === "number" && <span>capital {job.config.initial_capital.toLocaleString()}</span>}
      <span className="muted">
        fees {String(job.config.fee_bps ?? 0)} bps + {String(job.config.fee_fixed ?? 0)}, slippage {String(job.config.slippage_bps ?? 0)} bps
      </span>
    </p>
  );
}
