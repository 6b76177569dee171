/** Server state of live (forward-test) sessions (TanStack Query). */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";
import type { Cadence } from "../live/cutover"; // a type only: the sessions list is in the initial bundle

export type LiveSession = components["schemas"]["SessionPublic"];
export type SessionCreate = components["schemas"]["SessionCreate"];
export type SessionTrade = components["schemas"]["forward-test-service.TradePublic"];
type Bar = components["schemas"]["BarPublic"];

/** Polling while nothing is pushed: running sessions move with every bar. */
export const SESSION_POLL_MS = 5000;
/** Polling of what no push carries (metrics, lag, gaps) while the rest is pushed live. */
export const SESSION_POLL_SAFETY_MS = 30_000;
/** The session page lists the latest trades, at most this many. */
export const SESSION_TRADES = 500;

/** A source's polling: by its cadence under the cutover (live/cutover.ts), slower while paused,
 * none once the session has ended. */
function interval(status: LiveSession["status"] | undefined, cadence: Cadence): number | false {
  if (status === "stopped" || status === "failed") return false;
  if (cadence === "pushed") return false;
  return cadence === "safety" ? SESSION_POLL_SAFETY_MS : status === "paused" ? 15_000 : SESSION_POLL_MS;
}

export function useSessions(status?: LiveSession["status"]) {
  const api = useApi();
  return useQuery({
    queryKey: ["sessions", status ?? "all"],
    queryFn: () => unwrap(api.GET("/api/sessions", { params: { query: { status, limit: 100 } } })),
    refetchInterval: (q) => (q.state.data?.items.some((s) => s.status === "running") ? 10_000 : false),
  });
}

export function useLiveSession(id: string, cadence: Cadence) {
  const api = useApi();
  return useQuery({
    queryKey: ["session", id],
    queryFn: () => unwrap(api.GET("/api/sessions/{session_id}", { params: { path: { session_id: id } } })),
    refetchInterval: (q) => interval(q.state.data?.status, cadence),
  });
}

export function useSessionEquity(id: string, status: LiveSession["status"] | undefined, cadence: Cadence) {
  const api = useApi();
  return useQuery({
    queryKey: ["session", id, "equity"],
    queryFn: () =>
      unwrap(api.GET("/api/sessions/{session_id}/equity", { params: { path: { session_id: id }, query: { points: 2000 } } })),
    enabled: status !== undefined,
    refetchInterval: interval(status, cadence),
  });
}

/** The latest SESSION_TRADES closed trades (in order) and how many there are. */
export function useSessionTrades(id: string, status: LiveSession["status"] | undefined, cadence: Cadence) {
  const api = useApi();
  return useQuery({
    queryKey: ["session", id, "trades"],
    queryFn: async () => {
      const get = (offset: number) =>
        unwrap(
          api.GET("/api/sessions/{session_id}/trades", {
            params: { path: { session_id: id }, query: { offset, limit: SESSION_TRADES } },
          }),
        );
      let page = await get(0);
      if (page.total > SESSION_TRADES) page = await get(page.total - SESSION_TRADES);
      return page;
    },
    enabled: status !== undefined,
    refetchInterval: interval(status, cadence),
  });
}

/** An agent-mode session's terminal account, read again whenever its summary (polled or
 * pushed with the session) says it moved (`terminalMoves`): nothing else changes it. */
export function useSessionTerminal(id: string, moves: number | undefined) {
  const api = useApi();
  return useQuery({
    queryKey: ["session", id, "terminal", moves],
    queryFn: () => unwrap(api.GET("/api/sessions/{session_id}/terminal", { params: { path: { session_id: id } } })),
    enabled: moves !== undefined,
    placeholderData: (previous) => previous,
  });
}

export function useCreateSession() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: SessionCreate) => unwrap(api.POST("/api/sessions", { body })),
    onSuccess: (s) => {
      client.setQueryData(["session", s.id], s);
      void client.invalidateQueries({ queryKey: ["sessions"] });
    },
  });
}

export type SessionAction = "pause" | "resume" | "stop";

export function useSessionAction(id: string) {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (action: SessionAction) => {
      const params = { params: { path: { session_id: id } } };
      if (action === "pause") return unwrap(api.POST("/api/sessions/{session_id}/pause", params));
      if (action === "resume") return unwrap(api.POST("/api/sessions/{session_id}/resume", params));
      return unwrap(api.POST("/api/sessions/{session_id}/stop", params));
    },
    onSuccess: (s) => client.setQueryData(["session", id], s),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: ["session", id] });
      void client.invalidateQueries({ queryKey: ["sessions"] });
    },
  });
}

/** Start a stopped or failed session again: a new session with the same settings (its id). */
export function useRestartSession(id: string) {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/sessions/{session_id}/restart", { params: { path: { session_id: id } } })),
    onSuccess: (s) => {
      client.setQueryData(["session", s.id], s);
      void client.invalidateQueries({ queryKey: ["sessions"] });
    },
  });
}

/** Delete a session (the service stops it first if it runs). */
export function useDeleteSession(id: string) {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/sessions/{session_id}", { params: { path: { session_id: id } } })),
    onSuccess: () => {
      client.removeQueries({ queryKey: ["session", id] });
      void client.invalidateQueries({ queryKey: ["sessions"] });
    },
  });
}

/** Bars drawn under a session's trades: the series it follows, from `start`, at most this many. */
export const SESSION_BARS = 5000;

/**
 * The bars of the session's series from `start` (its first applied bar) on. Not polled: the page
 * refetches them when the session has applied another bar (same key prefix as the session's).
 */
export function useSessionBars(session: LiveSession | undefined, start: string | undefined) {
  const api = useApi();
  return useQuery({
    queryKey: ["session", session?.id, "bars", start],
    queryFn: async () => {
      const bars: Bar[] = [];
      let cursor: string | null = null;
      do {
        // JSON unless Arrow is asked for (the schema lists both answers)
        const page = (await unwrap(
          api.GET("/api/market/symbols/{symbol}/bars", {
            params: {
              path: { symbol: session!.symbol },
              query: { timeframe: session!.timeframe, start, cursor, limit: 1000, owner: session!.owner ?? "platform" },
            },
          }),
        )) as components["schemas"]["BarsPage"];
        bars.push(...page.bars);
        cursor = page.next_cursor;
      } while (cursor !== null && bars.length < SESSION_BARS);
      return bars;
    },
    enabled: session !== undefined && start !== undefined,
  });
}
