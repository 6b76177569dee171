/**
 * Live updates of one resource over the gateway's WebSocket (`/ws`, docs/notifications.md): the
 * page subscribes to its channel and refetches its REST queries whenever something happened on
 * it. The page keeps showing REST data, which is right in every cutover mode (`shadow` pushes are
 * hints, `rest` pushes nothing), and it keeps polling, slower while the socket is up, so a
 * missing or broken socket only makes updates slower.
 */
import { useEffect, useRef, useState } from "react";
import type { TokenStore } from "../auth/tokens";

export type LiveState = "connecting" | "live" | "polling";

/** What a server message on the socket means for the page watching `channel`. */
export function channelAction(
  message: unknown,
  channel: string,
): "subscribed" | "refetch" | "refused" | "retry" | "ignore" {
  if (typeof message !== "object" || message === null) return "ignore";
  const m = message as { type?: unknown; channel?: unknown; code?: unknown };
  if (m.channel !== channel) return "ignore";
  switch (m.type) {
    case "subscribed":
      return "subscribed";
    case "snapshot":
    case "event":
    case "gap": // some events are gone: the REST state is the truth
      return "refetch";
    case "error": // unavailable, rate_limited, …: try again later; not_found, forbidden, …: never
      return m.code === "unavailable" || m.code === "rate_limited" || m.code === "too_many_subscriptions" ? "retry" : "refused";
    default:
      return "ignore";
  }
}

/** Seconds to wait before the `attempt`-th reconnection (1, 2, 4 … up to 30). */
export function reconnectDelay(attempt: number): number {
  return Math.min(30, 2 ** Math.max(0, attempt - 1));
}

export function useLiveChannel(tokens: TokenStore, channel: string | null, onChange: () => void): LiveState {
  const [state, setState] = useState<LiveState>(channel === null ? "polling" : "connecting");
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (channel === null || typeof WebSocket === "undefined") {
      setState("polling");
      return;
    }
    let socket: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempts = 0;
    let done = false;

    const connect = () => {
      const token = tokens.access();
      if (token === null) return retry(); // a request refreshes it meanwhile
      const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
      socket = new WebSocket(url, ["algotrade.v1", `bearer.${token}`]);
      socket.onopen = () => socket?.send(JSON.stringify({ type: "subscribe", channel }));
      socket.onmessage = (e) => {
        let message: unknown;
        try {
          message = JSON.parse(String(e.data));
        } catch {
          return;
        }
        switch (channelAction(message, channel)) {
          case "subscribed":
            attempts = 0;
            setState("live");
            break;
          case "refetch":
            changed.current();
            break;
          case "refused": // this channel will not work on this socket: poll
            done = true;
            setState("polling");
            socket?.close();
            break;
          case "retry":
            socket?.close(); // onclose reconnects after a while
            break;
        }
      };
      socket.onclose = () => {
        socket = null;
        if (done) return;
        setState("polling");
        retry();
      };
    };
    const retry = () => {
      attempts += 1;
      timer = setTimeout(connect, reconnectDelay(attempts) * 1000);
    };

    setState("connecting");
    connect();
    return () => {
      done = true;
      clearTimeout(timer);
      socket?.close();
    };
  }, [tokens, channel]);

  return state;
}
