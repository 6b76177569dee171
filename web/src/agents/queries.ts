/** Server state of execution agents (TanStack Query). Polled; an agent's page also listens on
 * its WebSocket channel (`agent:{id}`) and refetches on every event. */
import { useInfiniteQuery, useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";
import type { AgentCreate, CommandCreate, CommandState } from "./agents";

export type Agent = components["schemas"]["AgentPublic"];
export type AgentCommand = components["schemas"]["CommandPublic"];
export type AgentCommandsPage = components["schemas"]["CommandsPublic"];
export type AgentsStatus = components["schemas"]["SystemStatus"];

/** Polling while nothing is pushed: a heartbeat comes every few seconds. */
export const AGENT_POLL_MS = 5000;
/** Polling while the agent's WebSocket channel is up: only a safety net. */
export const AGENT_POLL_LIVE_MS = 30_000;

export function useAgents() {
  const api = useApi();
  return useQuery({ queryKey: ["agents"], queryFn: () => unwrap(api.GET("/api/agents")), refetchInterval: AGENT_POLL_MS * 2 });
}

export function useAgentsStatus(live = false) {
  const api = useApi();
  return useQuery({
    queryKey: ["agents", "status"],
    queryFn: () => unwrap(api.GET("/api/agents/status")),
    refetchInterval: live ? AGENT_POLL_LIVE_MS : AGENT_POLL_MS * 2,
  });
}

export function useAgent(id: string, live: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: ["agent", id],
    queryFn: () => unwrap(api.GET("/api/agents/{agent_id}", { params: { path: { agent_id: id } } })),
    refetchInterval: live ? AGENT_POLL_LIVE_MS : AGENT_POLL_MS,
  });
}

export function useAgentPositions(id: string, live: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: ["agent", id, "positions"],
    queryFn: () => unwrap(api.GET("/api/agents/{agent_id}/positions", { params: { path: { agent_id: id } } })),
    refetchInterval: live ? AGENT_POLL_LIVE_MS : AGENT_POLL_MS,
  });
}

/** A page of the command list: the most a page may hold. */
export const QUEUE_PAGE = 50;

/**
 * The agent's commands, newest first (`GET /api/agents/{id}/queue`, read-only: it leases
 * nothing), of the given states; older pages on demand. Polled every few seconds whatever the
 * WebSocket does. Each command is also put in its own query (`["agent", id, "command", cid]`),
 * where the notification cutover reads and updates it.
 */
export function useAgentQueue(agentId: string, states: readonly CommandState[]) {
  const api = useApi();
  const client = useQueryClient();
  return useInfiniteQuery({
    queryKey: ["agent", agentId, "queue", [...states]],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) => {
      const page = await unwrap(
        api.GET("/api/agents/{agent_id}/queue", {
          params: {
            path: { agent_id: agentId },
            query: { limit: QUEUE_PAGE, cursor: pageParam, state: states.length > 0 ? [...states] : undefined },
          },
        }),
      );
      for (const command of page.items) client.setQueryData(["agent", agentId, "command", command.id], command);
      return page;
    },
    getNextPageParam: (last: AgentCommandsPage) => last.next_cursor ?? undefined,
    refetchInterval: AGENT_POLL_MS,
  });
}

/**
 * The listed commands as their own queries hold them: the list's poll writes them, and so does
 * a live push of a command's outcome (live/agent.ts), which then shows before the next poll.
 * Never fetched from here.
 */
export function useListedCommands(agentId: string, listed: AgentCommand[]): AgentCommand[] {
  const api = useApi();
  const cached = useQueries({
    queries: listed.map((c) => ({
      queryKey: ["agent", agentId, "command", c.id],
      queryFn: () =>
        unwrap(api.GET("/api/agents/{agent_id}/commands/{command_id}", { params: { path: { agent_id: agentId, command_id: c.id } } })),
      enabled: false,
    })),
  });
  return listed.map((c, i) => cached[i]?.data ?? c);
}

export function useRegisterAgent() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: AgentCreate) => unwrap(api.POST("/api/agents", { body })),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: ["agents"] });
      void client.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });
}

export function useQueueCommand(agentId: string) {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: CommandCreate) => unwrap(api.POST("/api/agents/{agent_id}/commands", { params: { path: { agent_id: agentId } }, body })),
    onSuccess: (command) => client.setQueryData(["agent", agentId, "command", command.id], command),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: ["agent", agentId, "queue"] });
      void client.invalidateQueries({ queryKey: ["agents", "status"] });
    },
  });
}

export function useDeleteAgent() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/api/agents/{agent_id}", { params: { path: { agent_id: id } } })),
    onSettled: () => void client.invalidateQueries({ queryKey: ["agents"] }),
  });
}
