import { afterEach, describe, expect, it, vi } from "vitest";
import { createTokenStore } from "../auth/tokens";
import { createApi, refreshRefused, unwrap } from "./client";
import { ApiError } from "./problem";

const BASE = "http://gw";

function memoryStorage() {
  const items = new Map<string, string>();
  return {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
    removeItem: (k: string) => void items.delete(k),
    items,
  };
}

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });

const pair = (n: number) => ({
  access_token: `access-${n}`,
  refresh_token: `refresh-${n}`,
  token_type: "bearer" as const,
  expires_in: 900,
  refresh_expires_in: 2_592_000,
});

/** A gateway whose access tokens are valid from `valid` on, and whose refresh rotates. */
function fakeGateway(valid: string) {
  const calls: { path: string; auth: string | null; body: string }[] = [];
  let issued = 1;
  let current = valid;
  const fetch = vi.fn(async (request: Request) => {
    const path = new URL(request.url).pathname;
    const body = await request.text();
    calls.push({ path, auth: request.headers.get("Authorization"), body });
    if (path === "/api/auth/refresh") {
      if (JSON.parse(body).refresh_token !== `refresh-${issued}`) {
        return json(401, { type: "about:blank", title: "Unauthorized", status: 401, detail: "spent", code: "unauthorized" }, "application/problem+json");
      }
      issued += 1;
      current = `Bearer access-${issued}`;
      return json(200, pair(issued));
    }
    if (request.headers.get("Authorization") !== current) {
      return json(401, { type: "about:blank", title: "Unauthorized", status: 401, detail: "expired", code: "unauthorized" }, "application/problem+json");
    }
    return json(200, { data: [], count: 0, limit: 20, offset: 0 });
  });
  return { fetch, calls };
}

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("sends the access token and gets the answer", async () => {
    const gateway = fakeGateway("Bearer access-1");
    vi.stubGlobal("fetch", gateway.fetch);
    const tokens = createTokenStore(memoryStorage());
    tokens.set(pair(1));
    const api = createApi(tokens, BASE);
    const page = await unwrap(api.GET("/api/strategies"));
    expect(page.count).toBe(0);
    expect(gateway.calls).toHaveLength(1);
    expect(gateway.calls[0]!.auth).toBe("Bearer access-1");
  });

  it("refreshes once on a 401 and retries the request with its body", async () => {
    const gateway = fakeGateway("Bearer access-2"); // access-1 has expired
    vi.stubGlobal("fetch", gateway.fetch);
    const storage = memoryStorage();
    const tokens = createTokenStore(storage);
    tokens.set(pair(1));
    const api = createApi(tokens, BASE);
    await unwrap(api.POST("/api/strategies/validate", { body: { graph: { nodes: [] } } }));
    expect(gateway.calls.map((c) => c.path)).toEqual([
      "/api/strategies/validate",
      "/api/auth/refresh",
      "/api/strategies/validate",
    ]);
    expect(gateway.calls[2]!.body).toBe(JSON.stringify({ graph: { nodes: [] } }));
    expect(tokens.access()).toBe("access-2");
    expect(storage.items.get("algotrade.refresh_token")).toBe("refresh-2"); // rotated
  });

  it("shares one refresh among concurrent 401s (a refresh token is spent once)", async () => {
    const gateway = fakeGateway("Bearer access-2");
    vi.stubGlobal("fetch", gateway.fetch);
    const tokens = createTokenStore(memoryStorage());
    tokens.set(pair(1));
    const api = createApi(tokens, BASE);
    await Promise.all([unwrap(api.GET("/api/strategies")), unwrap(api.GET("/api/strategies"))]);
    expect(gateway.calls.filter((c) => c.path === "/api/auth/refresh")).toHaveLength(1);
  });

  it("resumes a reloaded tab from the stored refresh token before the first request", async () => {
    const gateway = fakeGateway("Bearer access-2");
    vi.stubGlobal("fetch", gateway.fetch);
    const storage = memoryStorage();
    storage.setItem("algotrade.refresh_token", "refresh-1");
    const tokens = createTokenStore(storage);
    expect(tokens.access()).toBeNull();
    await unwrap(createApi(tokens, BASE).GET("/api/strategies"));
    expect(gateway.calls.map((c) => c.path)).toEqual(["/api/auth/refresh", "/api/strategies"]);
  });

  it("signs out when the refresh is refused, and the request fails with its problem", async () => {
    const gateway = fakeGateway("Bearer never");
    vi.stubGlobal("fetch", gateway.fetch);
    const tokens = createTokenStore(memoryStorage());
    tokens.set({ ...pair(1), refresh_token: "stolen-and-spent" });
    const error = await unwrap(createApi(tokens, BASE).GET("/api/strategies")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).problem).toMatchObject({ title: "Unauthorized", detail: "expired", status: 401 });
    expect(tokens.refresh()).toBeNull();
  });

  it("keeps the session when the refresh is rate limited, and the request fails with that problem", async () => {
    const gateway = fakeGateway("Bearer access-2"); // access-1 has expired
    const limited = vi.fn(async (request: Request) =>
      new URL(request.url).pathname === "/api/auth/refresh"
        ? json(429, { type: "about:blank", title: "Too Many Requests", status: 429, detail: "slow down", code: "rate_limited" }, "application/problem+json")
        : gateway.fetch(request),
    );
    vi.stubGlobal("fetch", limited);
    const tokens = createTokenStore(memoryStorage());
    tokens.set(pair(1));
    const api = createApi(tokens, BASE);
    const error = await unwrap(api.GET("/api/strategies")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).problem).toMatchObject({ status: 429, title: "Too Many Requests", detail: "slow down" });
    expect(tokens.refresh()).toBe("refresh-1"); // still signed in
    // once the gateway answers again, the same refresh token works
    vi.stubGlobal("fetch", gateway.fetch);
    await unwrap(api.GET("/api/strategies"));
    expect(tokens.access()).toBe("access-2");
  });

  it("keeps the session when the refresh meets a 5xx or no network, and says so", async () => {
    const tokens = createTokenStore(memoryStorage());
    tokens.set(pair(1));
    const api = createApi(tokens, BASE);
    const expired = json(401, { type: "about:blank", title: "Unauthorized", status: 401, detail: "expired" }, "application/problem+json");
    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) =>
        new URL(request.url).pathname === "/api/auth/refresh"
          ? new Response("upstream down", { status: 503, statusText: "Service Unavailable" })
          : expired.clone(),
      ),
    );
    const down = await unwrap(api.GET("/api/strategies")).catch((e: unknown) => e);
    expect((down as ApiError).problem).toMatchObject({ status: 503, title: "Service Unavailable", detail: "upstream down" });
    expect(tokens.refresh()).toBe("refresh-1");

    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) =>
        new URL(request.url).pathname === "/api/auth/refresh" ? Promise.reject(new TypeError("Failed to fetch")) : expired.clone(),
      ),
    );
    const offline = await unwrap(api.GET("/api/strategies")).catch((e: unknown) => e);
    expect((offline as ApiError).problem).toMatchObject({ status: 0, title: "The gateway cannot be reached" });
    expect(tokens.refresh()).toBe("refresh-1");
  });

  it("signs out when the stored refresh token is not one the gateway accepts (422 on it)", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        json(
          422,
          { type: "about:blank", title: "Unprocessable Entity", status: 422, detail: "invalid request", errors: [{ loc: ["body", "refresh_token"], msg: "too long" }] },
          "application/problem+json",
        ),
      ),
    );
    const storage = memoryStorage();
    storage.setItem("algotrade.refresh_token", "x".repeat(500));
    const tokens = createTokenStore(storage);
    await createApi(tokens, BASE).GET("/api/strategies").catch(() => undefined);
    expect(tokens.refresh()).toBeNull();
  });

  it("tells a refused refresh from a failed one", () => {
    expect(refreshRefused(401, { title: "Unauthorized", status: 401 })).toBe(true);
    expect(refreshRefused(429, { title: "Too Many Requests", status: 429 })).toBe(false);
    expect(refreshRefused(500, "boom")).toBe(false);
    expect(refreshRefused(502, { title: "Bad Gateway", status: 502 })).toBe(false);
    expect(refreshRefused(422, { title: "x", status: 422, errors: [{ loc: ["body", "email"] }] })).toBe(false);
  });

  it("never sends the access token to the auth routes", async () => {
    const gateway = fakeGateway("Bearer access-1");
    vi.stubGlobal("fetch", gateway.fetch);
    const tokens = createTokenStore(memoryStorage());
    tokens.set(pair(1));
    await createApi(tokens, BASE).POST("/api/auth/logout", { body: { refresh_token: "refresh-1" } });
    expect(gateway.calls[0]!.auth).toBeNull();
  });

  it("turns an unreachable gateway into a problem", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const tokens = createTokenStore(null);
    const error = await createApi(tokens, BASE).GET("/api/strategies").catch((e: unknown) => e);
    expect((error as ApiError).problem).toMatchObject({
      title: "The gateway cannot be reached",
      detail: "Failed to fetch",
    });
  });

  it("gives a non-problem error answer a title and a detail", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("upstream exploded", { status: 502, statusText: "Bad Gateway" })));
    const error = await unwrap(createApi(createTokenStore(null), BASE).GET("/api/strategies")).catch((e: unknown) => e);
    expect((error as ApiError).problem).toMatchObject({ status: 502, title: "Bad Gateway", detail: "upstream exploded" });
  });
});
