/**
 * A page's live data under the notification cutover (cutover.ts): the families' modes (REST,
 * refreshed by the socket's `welcome` and `features` messages), its channel on the gateway's
 * WebSocket (`/ws`, docs/notifications.md; the access token in the `bearer.` subprotocol), the
 * cadence of each REST source it shows, and the ledger of pushes, polls and shadow differences
 * the Live data panel shows.
 */
import { useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { unwrap } from "../api/client";
import type { TokenStore } from "../auth/tokens";
import { useApi } from "../auth/session";
import {
  cadence,
  emptyLedger,
  FAMILIES,
  pushUse,
  readMessage,
  readModes,
  reconnectDelay,
  recordPoll,
  recordPush,
  settle,
  type Cadence,
  type Family,
  type Ledger,
  type Modes,
  type PushedEvent,
  type RestAnswers,
  type SocketState,
  type Source,
  type Verdict,
} from "./cutover";

/** The modes are reread this often, for changes made while the socket was down. */
export const FEATURES_POLL_MS = 60_000;
const FEATURES_KEY = ["notifications", "features"] as const;

export function useFeatures() {
  const api = useApi();
  return useQuery({
    queryKey: FEATURES_KEY,
    queryFn: async () => readModes((await unwrap(api.GET("/api/notifications/features"))).features),
    refetchInterval: FEATURES_POLL_MS,
    staleTime: 10_000,
  });
}

export type CutoverOptions<S extends string> = {
  tokens: TokenStore;
  /** `session:{id}`, `agent:{id}`; null: nothing to follow (finished, not loaded yet). */
  channel: string | null;
  sources: Record<S, Source>;
  /** The query key of each source; its cached answer and `dataUpdatedAt` are read each render
   * (the page re-renders whenever one of its queries changes). */
  keys: Record<S, readonly unknown[]>;
  /** Show a live push (update the query cache). */
  apply: (event: PushedEvent, family: Family) => void;
  /** How a shadow push compares with the REST answers fetched after it (by source name). */
  check: (event: PushedEvent) => (fresh: Record<string, unknown>) => Verdict;
  /** Refetch every source over REST: on (re)subscribing, a gap, a change of modes. */
  resync: () => void;
};

export type Cutover<S extends string> = {
  modes: Modes | undefined;
  socket: SocketState;
  cadenceOf: (source: S) => Cadence;
  ledger: Ledger;
};

export function useCutover<S extends string>(options: CutoverOptions<S>): Cutover<S> {
  const { tokens, channel, sources } = options;
  const client = useQueryClient();
  const features = useFeatures();
  const modes = features.data;
  const [socket, setSocket] = useState<SocketState>(channel === null ? "down" : "connecting");
  const [ledger, setLedger] = useState<Ledger>(emptyLedger);
  const latest = useRef({ options, modes });
  latest.current = { options, modes };

  // A change of modes (after the first known) refetches every source: data shown from pushes
  // goes back to REST, and a family going live starts from a fresh REST state.
  const seenModes = useRef<string | null>(null);
  useEffect(() => {
    if (modes === undefined) return;
    const key = FAMILIES.map((f) => modes[f] ?? "-").join(",");
    if (seenModes.current !== null && seenModes.current !== key) latest.current.options.resync();
    seenModes.current = key;
  }, [modes]);

  useEffect(() => {
    if (channel === null || typeof WebSocket === "undefined") {
      setSocket("down");
      return;
    }
    let ws: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempts = 0;
    let done = false;

    const onMessage = (raw: unknown) => {
      const m = readMessage(raw, channel);
      const { options: o, modes: current } = latest.current;
      switch (m.kind) {
        case "features":
          client.setQueryData(FEATURES_KEY, m.modes);
          break;
        case "subscribed":
          attempts = 0;
          setSocket("subscribed");
          o.resync(); // what happened while unsubscribed is not pushed again
          break;
        case "gap":
          o.resync();
          break;
        case "event": {
          const use = pushUse(current?.[m.family], m.shadow);
          if (use === "apply") o.apply(m.event, m.family);
          const pending = use === "compare" ? { family: m.family, type: m.event.type, receivedAt: Date.now(), check: o.check(m.event) } : undefined;
          setLedger((l) => recordPush(l, m.family, use, pending));
          break;
        }
        case "refused": // this channel will not work on this socket: poll
          done = true;
          setSocket("down");
          ws?.close();
          break;
        case "retry":
          ws?.close(); // onclose reconnects after a while
          break;
      }
    };
    const connect = () => {
      const token = tokens.access();
      if (token === null) return retry(); // a request refreshes it meanwhile
      const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
      ws = new WebSocket(url, ["algotrade.v1", `bearer.${token}`]);
      ws.onopen = () => ws?.send(JSON.stringify({ type: "subscribe", channel }));
      ws.onmessage = (e) => {
        let message: unknown;
        try {
          message = JSON.parse(String(e.data));
        } catch {
          return;
        }
        onMessage(message);
      };
      ws.onclose = () => {
        ws = null;
        if (done) return;
        setSocket("down");
        retry();
      };
    };
    const retry = () => {
      attempts += 1;
      timer = setTimeout(connect, reconnectDelay(attempts) * 1000);
    };

    setSocket("connecting");
    connect();
    return () => {
      done = true;
      clearTimeout(timer);
      ws?.close();
    };
  }, [tokens, channel, client]);

  const cadenceOf = useCallback((source: S) => cadence(sources[source], modes, socket), [sources, modes, socket]);
  useRestAnswers(client, options.keys, sources, setLedger);
  return { modes, socket, cadenceOf, ledger };
}

/**
 * Each new REST answer of a source (its query's `dataUpdatedAt`, which pushes applied with
 * `setQueryData(…, { updatedAt })` leave alone) counts as a poll of its families and settles the
 * shadow pushes waiting for it.
 */
function useRestAnswers<S extends string>(
  client: QueryClient,
  keys: Record<S, readonly unknown[]>,
  sources: Record<S, Source>,
  setLedger: (change: (l: Ledger) => Ledger) => void,
) {
  const answers: RestAnswers = {};
  for (const [name, key] of Object.entries<readonly unknown[]>(keys)) {
    const state = client.getQueryState(key);
    if (state?.data !== undefined) answers[name] = { data: state.data, at: state.dataUpdatedAt };
  }
  const seenAt = useRef<Record<string, number>>({});
  const atKey = Object.entries(answers)
    .map(([name, a]) => `${name}:${a?.at ?? 0}`)
    .join(",");
  useEffect(() => {
    const fresh: string[] = [];
    for (const [name, a] of Object.entries(answers))
      if (a !== undefined && a.at > 0 && seenAt.current[name] !== a.at) {
        seenAt.current[name] = a.at;
        fresh.push(name);
      }
    if (fresh.length === 0) return;
    setLedger((l) => {
      const polled = fresh.reduce((acc, name) => recordPoll(acc, (sources as Record<string, Source>)[name]?.families ?? []), l);
      return settle(polled, answers, Date.now());
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps -- keyed on the answers' times
  }, [atKey]);
}
