/**
 * The typed gateway client: openapi-fetch over the generated schema, with the session's
 * access token on every request and one transparent refresh when the gateway answers 401.
 */
import createClient from "openapi-fetch";
import type { TokenPair, TokenStore } from "../auth/tokens";
import { ApiError, isProblem, networkProblem, problemFrom } from "./problem";
import type { paths } from "./schema";

export type Api = ReturnType<typeof createApi>;

const AUTH_PATHS = ["/api/auth/login", "/api/auth/register", "/api/auth/refresh", "/api/auth/logout"];

/**
 * Whether the gateway refused the refresh token itself, so that no later attempt can succeed:
 * `POST /api/auth/refresh` answers 401 for an unknown, spent, revoked or expired token (and a
 * disabled account), and 422 when the stored value is not a token at all. A 429, a 5xx or a
 * network failure says nothing about the token: the session stays.
 */
export function refreshRefused(status: number, body: unknown): boolean {
  if (status === 401) return true;
  if (status !== 422 || !isProblem(body)) return false;
  const errors = (body.errors ?? []) as { loc?: unknown }[];
  return errors.some((e) => Array.isArray(e.loc) && e.loc.includes("refresh_token"));
}

export function createApi(tokens: TokenStore, baseUrl = "") {
  /** ok: new tokens; refused: signed out; an ApiError: the refresh failed, the session stays. */
  type Refreshed = "ok" | "refused" | ApiError;
  let refreshing: Promise<Refreshed> | null = null;

  /** Spend the refresh token once for everyone waiting (concurrent 401s share it). */
  function refreshOnce(): Promise<Refreshed> {
    refreshing ??= (async (): Promise<Refreshed> => {
      const token = tokens.refresh();
      if (token === null) return "refused";
      let response: Response;
      try {
        response = await fetch(
          new Request(new URL("/api/auth/refresh", baseUrl || location.origin), {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ refresh_token: token }),
          }),
        );
      } catch (error) {
        return new ApiError(networkProblem(error)); // offline: keep the session
      }
      const body: unknown = await response
        .clone()
        .json()
        .catch(() => response.text().catch(() => ""));
      if (response.ok) {
        tokens.set(body as TokenPair);
        return "ok";
      }
      if (refreshRefused(response.status, body)) {
        tokens.clear();
        return "refused";
      }
      return new ApiError(problemFrom(response.status, body, response.statusText));
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
    /** A refresh that failed for a reason other than the token is the request's error. */
    const refreshed = async () => {
      const outcome = await refreshOnce();
      if (outcome instanceof ApiError) throw outcome;
      return outcome === "ok";
    };
    try {
      if (tokens.access() === null && tokens.refresh() !== null && !isAuthPath) await refreshed();
      const response = await send(input);
      if (response.status !== 401 || isAuthPath || !(await refreshed())) return response;
      return await send(retry);
    } catch (error) {
      throw error instanceof ApiError ? error : new ApiError(networkProblem(error));
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
