/**
 * Where the session's tokens live.
 *
 * The access token (15 minutes) is kept in memory only: script on the page can read it while
 * the tab lives, nothing survives the tab. The refresh token is kept in sessionStorage, so that
 * a reload of this tab stays signed in; it is per tab and gone when the tab closes, and the
 * gateway rotates it on every use (a stolen, spent one ends the whole session). A cookie would
 * keep it out of script's reach, but the gateway's auth API takes the refresh token in a JSON
 * body, so an httpOnly cookie is not an option without changing the gateway.
 */
import type { components } from "../api/schema";

export type TokenPair = components["schemas"]["TokenPair"];

const REFRESH_KEY = "algotrade.refresh_token";

type Listener = (signedIn: boolean) => void;

export interface TokenStore {
  access(): string | null;
  refresh(): string | null;
  set(pair: TokenPair): void;
  clear(): void;
  subscribe(listener: Listener): () => void;
}

export function createTokenStore(storage: Pick<Storage, "getItem" | "setItem" | "removeItem"> | null): TokenStore {
  let access: string | null = null;
  let refresh: string | null = storage?.getItem(REFRESH_KEY) ?? null;
  const listeners = new Set<Listener>();
  const notify = () => listeners.forEach((l) => l(refresh !== null));
  return {
    access: () => access,
    refresh: () => refresh,
    set(pair) {
      access = pair.access_token;
      refresh = pair.refresh_token;
      storage?.setItem(REFRESH_KEY, refresh);
      notify();
    },
    clear() {
      access = null;
      refresh = null;
      storage?.removeItem(REFRESH_KEY);
      notify();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
