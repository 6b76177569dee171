/**
 * The strategy editor page: loads a strategy (its current graph, or one version of it), then
 * hands the graph to `Editor`, which owns the canvas until it is saved.
 */
import { ReactFlowProvider } from "@xyflow/react";
import { Editor, type EditorSource } from "./Editor";
import type { StrategyGraph } from "./graph";
import { parseStoredProblems } from "./problems";
import { useNodeTypes, useStrategy, useVersion } from "../strategies/queries";
import { ErrorBox, Loading } from "../ui/ErrorBox";

const EMPTY: StrategyGraph = { nodes: [], edges: [] };

export function EditorPage({ strategyId, version }: { strategyId?: string; version?: number }) {
  const catalog = useNodeTypes();
  const strategy = useStrategy(strategyId);
  // A draft's problems live on its version, not on the strategy: load it too.
  const n = version ?? (strategy.data?.draft ? strategy.data.current_version : undefined);
  const versionQuery = useVersion(strategyId, n);

  const failed = catalog.error ?? strategy.error ?? versionQuery.error;
  if (failed) {
    return (
      <div className="page">
        <ErrorBox
          error={failed}
          onRetry={() => {
            void catalog.refetch();
            void strategy.refetch();
            void versionQuery.refetch();
          }}
        />
      </div>
    );
  }
  if (!catalog.data) return <Loading what="node types" />;
  if (strategyId !== undefined && (!strategy.data || (n !== undefined && !versionQuery.data))) {
    return <Loading what="strategy" />;
  }
  const source = editorSource(strategy.data, versionQuery.data, n);
  return (
    <ReactFlowProvider>
      <Editor key={source.key} catalog={catalog.data} source={source} />
    </ReactFlowProvider>
  );
}

function editorSource(
  strategy: ReturnType<typeof useStrategy>["data"],
  version: ReturnType<typeof useVersion>["data"],
  n: number | undefined,
): EditorSource {
  if (strategy === undefined) {
    return { key: "new", name: "Untitled strategy", graph: EMPTY, draftProblems: [] };
  }
  const graph = (version?.graph ?? strategy.graph) as unknown as StrategyGraph;
  return {
    key: `${strategy.id}:${n ?? "current"}:${strategy.current_version}`,
    id: strategy.id,
    name: strategy.name,
    currentVersion: strategy.current_version,
    viewingVersion: n ?? strategy.current_version,
    graph,
    draftProblems: parseStoredProblems(version?.problems),
  };
}
