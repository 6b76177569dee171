/** Server state of execution agents (TanStack Query). Polled; an agent's page also listens on
 * its WebSocket channel (`agent:{id}`) and refetches on every event. */
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";
import { commandPending, type AgentCreate, type CommandCreate } from "./agents";

export type Agent = components["schemas"]["AgentPublic"];
export type AgentCommand = components["schemas"]["CommandPublic"];
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

/** The given commands of an agent, each read on its own; pending ones are polled. */
export function useAgentCommands(agentId: string, ids: string[], live: boolean) {
  const api = useApi();
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: ["agent", agentId, "command", id],
      queryFn: () =>
        unwrap(api.GET("/api/agents/{agent_id}/commands/{command_id}", { params: { path: { agent_id: agentId, command_id: id } } })),
      refetchInterval: (q: { state: { data?: AgentCommand } }) =>
        q.state.data === undefined || commandPending(q.state.data.state) ? (live ? AGENT_POLL_LIVE_MS : AGENT_POLL_MS) : false,
    })),
  });
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
    onSettled: () => void client.invalidateQueries({ queryKey: ["agents", "status"] }),
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
