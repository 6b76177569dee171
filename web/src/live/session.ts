/**
 * The cutover of a session's page (`session:{id}`): its REST sources, how a live push changes
 * them in the query cache, and how a shadow push is compared with them.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo } from "react";
import type { components } from "../api/schema";
import type { TokenStore } from "../auth/tokens";
import type { Family, PushedEvent, Source } from "./cutover";
import { applyToEquity, applyToSession, applyToTrades, checkSessionPush } from "./pushes";
import { useCutover } from "./useCutover";

type Session = components["schemas"]["SessionPublic"];
type EquityPage = components["schemas"]["forward-test-service.EquityPublic"];
type TradesPage = components["schemas"]["forward-test-service.TradesPage"];

export type SessionSource = "session" | "equity" | "trades";

/** The page's REST sources and the families their data belongs to (docs/notifications.md). */
const SOURCES: Record<SessionSource, Source> = {
  session: { families: ["sessions", "account"], complete: false }, // metrics, lag, gaps: in no push
  // session.equity is sent at most once a second per session with every point since the last:
  // after a burst of bars (a replay) the last points wait for the next bar, so a slow refresh stays
  equity: { families: ["account"], complete: false },
  trades: { families: ["positions"], complete: true },
};
/** The families of a session's channel, as the Live data panel lists them. */
export const SESSION_FAMILIES: Family[] = ["sessions", "account", "positions", "orders"];

/** `keep`: how many trades the page lists. The queries are `["session", id]`, `[…, "equity"]`,
 * `[…, "trades"]` (sessions/queries.ts). */
export function useSessionCutover(tokens: TokenStore, sessionId: string, keep: number) {
  const client = useQueryClient();
  const keys = useMemo(
    () => ({ session: ["session", sessionId], equity: ["session", sessionId, "equity"], trades: ["session", sessionId, "trades"] }),
    [sessionId],
  );
  const resync = useCallback(() => void client.invalidateQueries({ queryKey: keys.session }), [client, keys]);
  // A push shown live changes the cached REST data in place; `updatedAt` stays the last fetch's,
  // so that only REST answers count as polls.
  const apply = useCallback(
    (event: PushedEvent) => {
      const update = <T>(key: unknown[], change: (old: T) => T | null) => {
        const state = client.getQueryState<T>(key);
        if (state?.data === undefined) return;
        const next = change(state.data);
        if (next !== null) client.setQueryData<T>(key, next, { updatedAt: state.dataUpdatedAt });
      };
      update<Session>(keys.session, (s) => applyToSession(s, event));
      update<EquityPage>(keys.equity, (p) => applyToEquity(p, event));
      update<TradesPage>(keys.trades, (p) => applyToTrades(p, event, keep));
    },
    [client, keys, keep],
  );
  const check = useCallback((event: PushedEvent) => (fresh: Record<string, unknown>) => checkSessionPush(event, fresh), []);
  // Read from the cache: the cutover sets the queries' cadence, so it comes before them (the page
  // re-renders on every change of its queries).
  const status = client.getQueryData<Session>(keys.session)?.status;
  const finished = status === "stopped" || status === "failed";
  return useCutover({
    tokens,
    channel: status !== undefined && !finished ? `session:${sessionId}` : null,
    sources: SOURCES,
    keys,
    apply,
    check,
    resync,
  });
}
