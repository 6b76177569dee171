/** Server state of strategies, versions, templates and the node catalog (TanStack Query). */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";
import { parseCatalog } from "../editor/catalog";
import type { StrategyGraph } from "../editor/graph";

export type StrategyDetail = components["schemas"]["StrategyDetailPublic"];
export type VersionDetail = components["schemas"]["VersionPublic"];
export type ValidationReport = components["schemas"]["ValidationReport"];

/** The API types graphs as free-form objects; `StrategyGraph` is their documented shape. */
function apiGraph(graph: StrategyGraph | null): Record<string, unknown> {
  return graph as unknown as Record<string, unknown>;
}

export function useNodeTypes() {
  const api = useApi();
  return useQuery({
    queryKey: ["node-types"],
    queryFn: async () => parseCatalog((await unwrap(api.GET("/api/strategies/node-types"))).data),
    staleTime: Infinity,
  });
}

export function useStrategies(q: string) {
  const api = useApi();
  return useQuery({
    queryKey: ["strategies", q],
    queryFn: () => unwrap(api.GET("/api/strategies", { params: { query: { q: q || undefined, limit: 100 } } })),
    placeholderData: keepPreviousData,
  });
}

export function useTemplates() {
  const api = useApi();
  return useQuery({
    queryKey: ["templates"],
    queryFn: () => unwrap(api.GET("/api/strategies/templates")),
    staleTime: 5 * 60_000,
  });
}

export function useStrategy(id: string | undefined) {
  const api = useApi();
  return useQuery({
    queryKey: ["strategy", id],
    queryFn: () => unwrap(api.GET("/api/strategies/{strategy_id}", { params: { path: { strategy_id: id! } } })),
    enabled: id !== undefined,
  });
}

export function useVersions(id: string | undefined) {
  const api = useApi();
  return useQuery({
    queryKey: ["versions", id],
    queryFn: () =>
      unwrap(api.GET("/api/strategies/{strategy_id}/versions", { params: { path: { strategy_id: id! }, query: { limit: 100 } } })),
    enabled: id !== undefined,
  });
}

export function useVersion(id: string | undefined, n: number | undefined) {
  const api = useApi();
  return useQuery({
    queryKey: ["version", id, n],
    queryFn: () =>
      unwrap(api.GET("/api/strategies/{strategy_id}/versions/{n}", { params: { path: { strategy_id: id!, n: n! } } })),
    enabled: id !== undefined && n !== undefined,
    staleTime: Infinity, // a version never changes
  });
}

/** The validator's report on `graph` (keyed by its meaning, so moving nodes asks nothing). */
export function useValidation(graph: StrategyGraph | null, key: string) {
  const api = useApi();
  return useQuery({
    queryKey: ["validate", key],
    queryFn: () => unwrap(api.POST("/api/strategies/validate", { body: { graph: apiGraph(graph) } })),
    enabled: graph !== null,
    placeholderData: keepPreviousData,
    staleTime: Infinity,
  });
}

export function useInstantiateTemplate() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (key: string) =>
      unwrap(api.POST("/api/strategies/templates/{key}/instantiate", { params: { path: { key } }, body: {} })),
    onSuccess: () => client.invalidateQueries({ queryKey: ["strategies"] }),
  });
}

export function useDeleteStrategy() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (s: { id: string; version: number }) =>
      unwrap(
        api.DELETE("/api/strategies/{strategy_id}", {
          params: { path: { strategy_id: s.id }, header: { "if-match": `"${s.version}"` } },
        }),
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: ["strategies"] }),
  });
}

export interface SaveArgs {
  id: string | undefined;
  name: string;
  graph: StrategyGraph;
  /** The version the edit started from (optimistic concurrency: 409 when it moved on). */
  expectedVersion: number | undefined;
}

export function useSaveStrategy() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, name, graph, expectedVersion }: SaveArgs) =>
      id === undefined
        ? unwrap(api.POST("/api/strategies", { body: { name, graph: apiGraph(graph) } }))
        : unwrap(
            api.PATCH("/api/strategies/{strategy_id}", {
              params: { path: { strategy_id: id } },
              body: { name, graph: apiGraph(graph), expected_version: expectedVersion },
            }),
          ),
    onSuccess: (saved) => {
      client.setQueryData(["strategy", saved.id], saved);
      void client.invalidateQueries({ queryKey: ["strategies"] });
      void client.invalidateQueries({ queryKey: ["versions", saved.id] });
    },
  });
}
