/**
 * The typed gateway client: openapi-fetch over the generated schema, with the session's
 * access token on every request and one transparent refresh when the gateway answers 401.
 */
import createClient from "openapi-fetch";
import type { TokenStore } from "../auth/tokens";
import { ApiError, networkProblem, problemFrom } from "./problem";
import type { paths } from "./schema";

export type Api = ReturnType<typeof createApi>;

const AUTH_PATHS = ["/api/auth/login", "/api/auth/register", "/api/auth/refresh", "/api/auth/logout"];

export function createApi(tokens: TokenStore, baseUrl = "") {
  let refreshing: Promise<boolean> | null = null;

  /** Spend the refresh token once for everyone waiting (concurrent 401s share it). */
  function refreshOnce(): Promise<boolean> {
    refreshing ??= (async () => {
      const token = tokens.refresh();
      if (token === null) return false;
      try {
        const response = await fetch(
          new Request(new URL("/api/auth/refresh", baseUrl || location.origin), {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ refresh_token: token }),
          }),
        );
        if (!response.ok) {
          tokens.clear();
          return false;
        }
        tokens.set(await response.json());
        return true;
      } catch {
        return false; // offline: keep the session, the request itself reports the failure
      }
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  async function authedFetch(input: Request): Promise<Response> {
    const isAuthPath = AUTH_PATHS.some((p) => new URL(input.url).pathname === p);
    const send = (request: Request) => {
      const access = tokens.access();
      if (access !== null && !isAuthPath) request.headers.set("Authorization", `Bearer ${access}`);
      return fetch(request);
    };
    const retry = input.clone();
    try {
      if (tokens.access() === null && tokens.refresh() !== null && !isAuthPath) await refreshOnce();
      const response = await send(input);
      if (response.status !== 401 || isAuthPath || !(await refreshOnce())) return response;
      return await send(retry);
    } catch (error) {
      throw new ApiError(networkProblem(error));
    }
  }

  return createClient<paths>({ baseUrl, fetch: authedFetch });
}

/** The data of an openapi-fetch answer, or an ApiError carrying its problem. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw new ApiError(problemFrom(response.status, error, response.statusText));
}
