/**
 * The cutover of an agent's page (`agent:{id}`, family `agents`): its REST sources, how a live
 * push changes them in the query cache, and how a shadow push is compared with them.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo } from "react";
import type { components } from "../api/schema";
import type { TokenStore } from "../auth/tokens";
import { REST_AFTER_MS, type Family, type PushedEvent, type Source } from "./cutover";
import { applyToAgent, applyToCommand, checkAgentPush, endedCommand } from "./pushes";
import { useCutover } from "./useCutover";

type Agent = components["schemas"]["AgentPublic"];
type Command = components["schemas"]["CommandPublic"];

/** Health and heartbeat figures are in no push (a slow refresh stays for them in live); the
 * agent's positions and last trade sync are on no channel and are always polled. */
const SOURCES: Record<"agent", Source> = { agent: { families: ["agents"], complete: false } };
export const AGENT_FAMILIES: Family[] = ["agents"];

/** The queries are `["agent", id]` and `["agent", id, "command", command id]` (agents/queries.ts). */
export function useAgentCutover(tokens: TokenStore, agentId: string) {
  const client = useQueryClient();
  const keys = useMemo(() => ({ agent: ["agent", agentId] }), [agentId]);
  const resync = useCallback(() => {
    void client.invalidateQueries({ queryKey: ["agent", agentId] });
    void client.invalidateQueries({ queryKey: ["agents", "status"] });
  }, [client, agentId]);
  // A live push changes the cached REST data in place, keeping the last fetch's time.
  const apply = useCallback(
    (event: PushedEvent) => {
      const command = endedCommand(event);
      if (event.type === "agent.sync.conflict") void client.invalidateQueries({ queryKey: ["agents", "status"] });
      if (command === null) {
        const state = client.getQueryState<Agent>(keys.agent);
        const next = state?.data && applyToAgent(state.data, event);
        if (next) client.setQueryData(keys.agent, next, { updatedAt: state!.dataUpdatedAt });
      } else {
        const key = ["agent", agentId, "command", command];
        const state = client.getQueryState<Command>(key);
        const next = state?.data && applyToCommand(state.data, event);
        if (next) client.setQueryData(key, next, { updatedAt: state!.dataUpdatedAt });
      }
    },
    [client, agentId, keys],
  );
  // A command's REST answer is read from the cache when the push is settled; a command the page
  // has no query for is not shown, so not compared.
  const check = useCallback(
    (event: PushedEvent) => {
      const receivedAt = Date.now();
      return (fresh: Record<string, unknown>) => {
        const command = endedCommand(event);
        const state = command === null ? undefined : client.getQueryState<Command>(["agent", agentId, "command", command]);
        const answer = state?.data !== undefined && state.dataUpdatedAt >= receivedAt + REST_AFTER_MS ? { [`command:${command}`]: state.data } : {};
        const shown = new Set(command !== null && state?.data !== undefined ? [command] : []);
        return checkAgentPush(event, { ...fresh, ...answer }, shown);
      };
    },
    [client, agentId],
  );
  const known = client.getQueryData<Agent>(keys.agent) !== undefined; // the page re-renders on its queries' changes
  return useCutover({ tokens, channel: known ? `agent:${agentId}` : null, sources: SOURCES, keys, apply, check, resync });
}
