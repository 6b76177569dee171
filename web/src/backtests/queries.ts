/** Server state of backtests, sweeps and the market data their pages draw (TanStack Query). */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";
import type { Timeframe } from "./form";

export type Job = components["schemas"]["JobPublic"];
export type BacktestCreate = components["schemas"]["BacktestCreate"];
export type SweepCreate = components["schemas"]["SweepCreate"];
export type BacktestConfig = components["schemas"]["BacktestConfig"];
export type Trade = components["schemas"]["TradePublic"];
export type EquityPoint = components["schemas"]["EquityPoint"];
export type Bar = components["schemas"]["BarPublic"];
export type SweepResult = components["schemas"]["SweepResultPublic"];

/** How often a job still queued or running is asked again; finished ones are not. */
export const JOB_POLL_MS = 2000;
/** At most this many bars and trades are drawn (pages of the API fetched in turn). */
export const MAX_BARS = 10_000;
export const MAX_TRADES = 5000;

export function isActive(status: Job["status"] | undefined): boolean {
  return status === "queued" || status === "running";
}

export function useJobs(kind?: "backtest" | "sweep") {
  const api = useApi();
  return useQuery({
    queryKey: ["jobs", kind ?? "all"],
    queryFn: () => unwrap(api.GET("/api/backtests", { params: { query: { kind, limit: 100 } } })),
    refetchInterval: (q) => (q.state.data?.items.some((j) => isActive(j.status)) ? 5000 : false),
  });
}

export function useJob(id: string) {
  const api = useApi();
  return useQuery({
    queryKey: ["job", id],
    queryFn: () => unwrap(api.GET("/api/backtests/{job_id}", { params: { path: { job_id: id } } })),
    refetchInterval: (q) => (isActive(q.state.data?.status) ? JOB_POLL_MS : false),
  });
}

export function useSweep(id: string) {
  const api = useApi();
  return useQuery({
    queryKey: ["job", id],
    queryFn: () => unwrap(api.GET("/api/backtests/sweeps/{job_id}", { params: { path: { job_id: id } } })),
    refetchInterval: (q) => (isActive(q.state.data?.status) ? JOB_POLL_MS : false),
  });
}

export function useEquity(id: string, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: ["job-equity", id],
    queryFn: () =>
      unwrap(api.GET("/api/backtests/{job_id}/equity", { params: { path: { job_id: id }, query: { points: 2000 } } })),
    enabled,
    staleTime: Infinity, // a completed job's results never change
  });
}

/** Every trade of a completed backtest, up to MAX_TRADES, and how many there are. */
export function useJobTrades(id: string, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: ["job-trades", id],
    queryFn: async () => {
      const trades: Trade[] = [];
      let total = 0;
      do {
        const page = await unwrap(
          api.GET("/api/backtests/{job_id}/trades", {
            params: { path: { job_id: id }, query: { offset: trades.length, limit: 1000 } },
          }),
        );
        total = page.total;
        trades.push(...page.trades);
        if (page.trades.length === 0) break;
      } while (trades.length < total && trades.length < MAX_TRADES);
      return { trades, total };
    },
    enabled,
    staleTime: Infinity,
  });
}

export function useSweepResults(id: string, sort: string, enabled: boolean, refetch: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: ["sweep-results", id, sort],
    queryFn: () =>
      unwrap(
        api.GET("/api/backtests/sweeps/{job_id}/results", {
          params: { path: { job_id: id }, query: { sort, limit: 1000 } },
        }),
      ),
    enabled,
    placeholderData: keepPreviousData,
    refetchInterval: refetch ? 5000 : false,
  });
}

export function useSymbols() {
  const api = useApi();
  return useQuery({
    queryKey: ["symbols"],
    queryFn: () => unwrap(api.GET("/api/market/symbols")),
    staleTime: 60_000,
  });
}

/** The bars of `symbol` in [start, end), up to MAX_BARS (the first ones), page by page. */
export function useBars(symbol: string, timeframe: Timeframe, start: string, end: string, enabled = true) {
  const api = useApi();
  return useQuery({
    queryKey: ["bars", symbol, timeframe, start, end],
    queryFn: async () => {
      const bars: Bar[] = [];
      let cursor: string | null = null;
      do {
        // JSON unless Arrow is asked for (the schema lists both answers)
        const page = (await unwrap(
          api.GET("/api/market/symbols/{symbol}/bars", {
            params: { path: { symbol }, query: { timeframe, start, end, cursor, limit: 1000 } },
          }),
        )) as components["schemas"]["BarsPage"];
        bars.push(...page.bars);
        cursor = page.next_cursor;
      } while (cursor !== null && bars.length < MAX_BARS);
      return { bars, truncated: cursor !== null };
    },
    enabled,
    staleTime: 5 * 60_000,
  });
}

export function useSubmitBacktest() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: BacktestCreate) => unwrap(api.POST("/api/backtests", { body })),
    onSuccess: (job) => {
      client.setQueryData(["job", job.id], job);
      void client.invalidateQueries({ queryKey: ["jobs"] });
    },
  });
}

export function useSubmitSweep() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: SweepCreate) => unwrap(api.POST("/api/backtests/sweeps", { body })),
    onSuccess: (job) => {
      client.setQueryData(["job", job.id], job);
      void client.invalidateQueries({ queryKey: ["jobs"] });
    },
  });
}

export function useCancelJob() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (job: Job) =>
      job.kind === "sweep"
        ? unwrap(api.DELETE("/api/backtests/sweeps/{job_id}", { params: { path: { job_id: job.id } } }))
        : unwrap(api.DELETE("/api/backtests/{job_id}", { params: { path: { job_id: job.id } } })),
    onSettled: (_data, _error, job) => {
      void client.invalidateQueries({ queryKey: ["job", job.id] });
      void client.invalidateQueries({ queryKey: ["jobs"] });
    },
  });
}
