/**
 * The signed-in session: the token store, the typed API client over it, and the sign-in,
 * sign-up and sign-out actions. A reload of the tab resumes the session with the refresh token
 * (see `tokens.ts` for where tokens are kept and why).
 */
import { useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { createApi, unwrap, type Api } from "../api/client";
import { createTokenStore, type TokenStore } from "./tokens";

interface Session {
  api: Api;
  tokens: TokenStore;
  signedIn: boolean;
  /** True while a reloaded tab trades its refresh token for an access token. */
  resuming: boolean;
  logIn(email: string, password: string): Promise<void>;
  signUp(email: string, password: string): Promise<void>;
  logOut(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const tokens = useMemo(() => createTokenStore(window.sessionStorage), []);
  const api = useMemo(() => createApi(tokens), [tokens]);
  const [signedIn, setSignedIn] = useState(tokens.refresh() !== null);
  const [resuming, setResuming] = useState(tokens.refresh() !== null && tokens.access() === null);

  useEffect(() => tokens.subscribe(setSignedIn), [tokens]);
  useEffect(() => {
    if (!resuming) return;
    // Any authenticated call refreshes first; /me also says whether the session is still good.
    api
      .GET("/api/auth/me")
      .catch(() => undefined)
      .finally(() => setResuming(false));
  }, [api, resuming]);

  const session = useMemo<Session>(
    () => ({
      api,
      tokens,
      signedIn,
      resuming,
      async logIn(email, password) {
        tokens.set(await unwrap(api.POST("/api/auth/login", { body: { email, password } })));
      },
      async signUp(email, password) {
        await unwrap(api.POST("/api/auth/register", { body: { email, password } }));
        tokens.set(await unwrap(api.POST("/api/auth/login", { body: { email, password } })));
      },
      async logOut() {
        const refresh = tokens.refresh();
        tokens.clear();
        queryClient.clear();
        if (refresh !== null) {
          // Ending the session server-side is best effort: locally it is over either way.
          await api.POST("/api/auth/logout", { body: { refresh_token: refresh } }).catch(() => undefined);
        }
      },
    }),
    [api, tokens, signedIn, resuming, queryClient],
  );
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession outside SessionProvider");
  return session;
}

export function useApi(): Api {
  return useSession().api;
}
