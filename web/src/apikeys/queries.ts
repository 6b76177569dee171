/** Server state of the user's API keys (TanStack Query). */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";

export type ApiKey = components["schemas"]["ApiKeyPublic"];
export type ApiKeyCreate = components["schemas"]["ApiKeyCreate"];

export function useApiKeys() {
  const api = useApi();
  return useQuery({ queryKey: ["api-keys"], queryFn: () => unwrap(api.GET("/api/api-keys")) });
}

export function useCreateApiKey() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: ApiKeyCreate) => unwrap(api.POST("/api/api-keys", { body })),
    onSettled: () => void client.invalidateQueries({ queryKey: ["api-keys"] }),
  });
}

export function useRevokeApiKey() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (key: ApiKey) => unwrap(api.DELETE("/api/api-keys/{key_id}", { params: { path: { key_id: key.id } } })),
    onSettled: () => void client.invalidateQueries({ queryKey: ["api-keys"] }),
  });
}
