/** Server state of the data page: symbols and gaps, imports, replays (TanStack Query). */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import { useApi } from "../auth/session";
import type { Timeframe } from "../backtests/form";
import { importActive, type ReplayCreate } from "./data";

export function useGaps(symbol: string, owner: string | null, timeframe: Timeframe | null) {
  const api = useApi();
  return useQuery({
    queryKey: ["gaps", symbol, owner, timeframe],
    queryFn: () =>
      unwrap(
        api.GET("/api/market/symbols/{symbol}/gaps", {
          params: { path: { symbol }, query: { timeframe: timeframe!, owner: owner ?? "platform" } },
        }),
      ),
    enabled: timeframe !== null,
    staleTime: 60_000,
  });
}

export function useImports() {
  const api = useApi();
  return useQuery({
    queryKey: ["imports"],
    queryFn: () => unwrap(api.GET("/api/market/imports")),
    refetchInterval: (q) => (q.state.data?.imports.some((i) => importActive(i.state)) ? 2000 : false),
  });
}

export function useImport(id: string | null) {
  const api = useApi();
  return useQuery({
    queryKey: ["import", id],
    queryFn: () => unwrap(api.GET("/api/market/imports/{import_id}", { params: { path: { import_id: id! } } })),
    enabled: id !== null,
    refetchInterval: (q) => (q.state.data === undefined || importActive(q.state.data.state) ? 1000 : false),
  });
}

export function useReplays() {
  const api = useApi();
  return useQuery({
    queryKey: ["replays"],
    queryFn: () => unwrap(api.GET("/api/market/replays")),
    refetchInterval: (q) => (q.state.data?.replays.some((r) => r.state === "running") ? 3000 : false),
  });
}

export function useStartReplay() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: ReplayCreate) => unwrap(api.POST("/api/market/replays", { body })),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: ["replays"] });
      void client.invalidateQueries({ queryKey: ["symbols"] });
    },
  });
}

export function useStopReplay() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.POST("/api/market/replays/{replay_id}/stop", { params: { path: { replay_id: id } } })),
    onSettled: () => void client.invalidateQueries({ queryKey: ["replays"] }),
  });
}
