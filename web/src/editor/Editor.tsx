/**
 * The canvas: nodes dragged in from the palette, typed ports connected (a connection the
 * engine would refuse is refused while dragging, with the reason), params edited in the side
 * panel, the validator asked as the graph changes (each problem shown on its node and port),
 * undo/redo, copy/paste and delete from the keyboard, and "save as a new version".
 */
import {
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  ConnectionMode,
  Controls,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type IsValidConnection,
  type NodeChange,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import type { Catalog } from "./catalog";
import { copySelection, pasteClip, type Clip } from "./clipboard";
import { CatalogContext, ProblemsContext } from "./context";
import {
  flowEdge,
  flowToGraph,
  freshNodeId,
  graphToFlow,
  isParamRef,
  renameNodeId,
  semanticGraph,
  type FlowEdge,
  type FlowNode,
  type ParamValue,
  type StrategyGraph,
  type Tunable,
} from "./graph";
import { History } from "./history";
import { layeredLayout } from "./layout";
import { Palette, DRAG_TYPE } from "./Palette";
import { ParamsPanel } from "./ParamsPanel";
import { checkConnection, type NodeRef } from "./ports";
import { placeProblems, type GraphProblem } from "./problems";
import { StrategyNode } from "./StrategyNode";
import { TunablesPanel } from "./TunablesPanel";
import { VersionsPanel } from "./VersionsPanel";
import { Link, navigate, setNavigationGuard } from "../router";
import { useSaveStrategy, useValidation } from "../strategies/queries";
import { ErrorBox } from "../ui/ErrorBox";

export interface EditorSource {
  key: string;
  id?: string;
  name: string;
  currentVersion?: number;
  viewingVersion?: number;
  graph: StrategyGraph;
  /** A Beta1 draft's stored problems (empty for a normal version). */
  draftProblems: GraphProblem[];
}

interface Snapshot {
  nodes: FlowNode[];
  edges: FlowEdge[];
  parameters: Record<string, Tunable> | undefined;
}

const NODE_TYPES = { strategy: StrategyNode };
/** Copied nodes outlive the editor, so they can be pasted into another strategy. */
const clipboard: { current: { clip: Clip; pastes: number } | null } = { current: null };
const VALIDATE_AFTER_MS = 350;

function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

export function Editor({ catalog, source }: { catalog: Catalog; source: EditorSource }) {
  const initial = useMemo(() => graphToFlow(source.graph), [source.graph]);
  const [nodes, setNodes] = useState<FlowNode[]>(initial.nodes);
  const [edges, setEdges] = useState<FlowEdge[]>(initial.edges);
  const [extras] = useState(initial.extras);
  const [parameters, setParameters] = useState(initial.extras.parameters);
  const [name, setName] = useState(source.name);
  const [dirty, setDirty] = useState(false);
  const [hint, setHint] = useState<string | null>(null);
  const history = useRef(new History<Snapshot>());
  const wrapper = useRef<HTMLDivElement>(null);
  const hintTimer = useRef<number | undefined>(undefined);
  const flow = useReactFlow<FlowNode, FlowEdge>();
  const save = useSaveStrategy();
  const queryClient = useQueryClient();

  // Latest state for the callbacks below, which React Flow keeps across renders.
  const state = useRef<Snapshot>({ nodes, edges, parameters });
  state.current = { nodes, edges, parameters };

  const record = useCallback(() => {
    history.current.record(state.current);
    setDirty(true);
  }, []);

  const restore = useCallback((snapshot: Snapshot | undefined) => {
    if (snapshot === undefined) return;
    setNodes(snapshot.nodes);
    setEdges(snapshot.edges);
    setParameters(snapshot.parameters);
    setDirty(true);
  }, []);

  // -- the graph and its problems ------------------------------------------------------------
  const graph = useMemo(
    () => flowToGraph(nodes, edges, { ...extras, parameters }),
    [nodes, edges, extras, parameters],
  );
  const tunableUses = useMemo(() => {
    const uses = new Map<string, number>();
    for (const n of nodes) {
      for (const v of Object.values(n.data.params)) {
        if (isParamRef(v)) uses.set(v.$param, (uses.get(v.$param) ?? 0) + 1);
      }
    }
    return uses;
  }, [nodes]);
  const validationKey = useDebounced(JSON.stringify(semanticGraph(graph)), VALIDATE_AFTER_MS);
  const validatedGraph = useMemo(() => JSON.parse(validationKey) as StrategyGraph, [validationKey]);
  const validation = useValidation(validatedGraph, validationKey);
  const checking = validation.isFetching || validationKey !== JSON.stringify(semanticGraph(graph));
  const validatorProblems: GraphProblem[] = useMemo(
    () => validation.data?.problems ?? [],
    [validation.data],
  );
  const allProblems = useMemo(
    () => [...validatorProblems, ...source.draftProblems.filter((p) => p.code.startsWith("beta1_"))],
    [validatorProblems, source.draftProblems],
  );
  const nodeIds = useMemo(() => new Set(nodes.map((n) => n.id)), [nodes]);
  const placed = useMemo(() => placeProblems(allProblems, nodeIds), [allProblems, nodeIds]);

  // -- editing -------------------------------------------------------------------------------
  const onNodesChange = useCallback((changes: NodeChange<FlowNode>[]) => {
    setNodes((current) => applyNodeChanges(changes, current));
  }, []);
  const onEdgesChange = useCallback((changes: EdgeChange<FlowEdge>[]) => {
    setEdges((current) => applyEdgeChanges(changes, current));
  }, []);

  const nodeRefs = useMemo(
    () => new Map<string, NodeRef>(nodes.map((n) => [n.id, { id: n.id, nodeType: n.data.nodeType }])),
    [nodes],
  );
  const isValidConnection: IsValidConnection<FlowEdge> = useCallback(
    (connection) => {
      const verdict = checkConnection(connection, nodeRefs, state.current.edges, catalog);
      setHint(verdict.ok ? null : verdict.reason);
      return verdict.ok;
    },
    [nodeRefs, catalog],
  );
  const onConnect = useCallback(
    (c: Connection) => {
      const verdict = checkConnection(c, nodeRefs, state.current.edges, catalog);
      if (!verdict.ok) return;
      record();
      setEdges((current) => [...current, flowEdge(c.source, c.sourceHandle!, c.target, c.targetHandle!)]);
    },
    [nodeRefs, catalog, record],
  );

  const addNode = useCallback(
    (type: string, position?: { x: number; y: number }) => {
      record();
      const taken = new Set(state.current.nodes.map((n) => n.id));
      const id = freshNodeId(type, taken);
      const at =
        position ??
        (() => {
          const box = wrapper.current?.getBoundingClientRect();
          const center = box
            ? flow.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 })
            : { x: 0, y: 0 };
          return freeSpot(center, state.current.nodes);
        })();
      const node: FlowNode = {
        id,
        type: "strategy",
        position: at,
        data: { nodeType: type, params: catalog.defaultParams(type) },
        selected: true,
      };
      setNodes((current) => [...current.map((n) => ({ ...n, selected: false })), node]);
    },
    [catalog, flow, record],
  );

  const onDrop = useCallback(
    (e: DragEvent) => {
      const type = e.dataTransfer.getData(DRAG_TYPE);
      if (!type) return;
      e.preventDefault();
      addNode(type, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
    },
    [addNode, flow],
  );

  const deleteSelection = useCallback(() => {
    const { nodes: ns, edges: es } = state.current;
    const gone = new Set(ns.filter((n) => n.selected).map((n) => n.id));
    const keptEdges = es.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target));
    if (gone.size === 0 && keptEdges.length === es.length) return;
    record();
    setNodes(ns.filter((n) => !gone.has(n.id)));
    setEdges(keptEdges);
  }, [record]);

  const copy = useCallback(() => {
    const clip = copySelection(state.current.nodes, state.current.edges);
    if (clip !== null) clipboard.current = { clip, pastes: 0 };
  }, []);

  const paste = useCallback(() => {
    const held = clipboard.current;
    if (held === null) return;
    held.pastes += 1;
    const pasted = pasteClip(held.clip, state.current.nodes, held.pastes);
    record();
    setNodes((current) => [...current.map((n) => ({ ...n, selected: false })), ...pasted.nodes]);
    setEdges((current) => [...current.map((e) => ({ ...e, selected: false })), ...pasted.edges]);
  }, [record]);

  const undo = useCallback(() => restore(history.current.undo(state.current)), [restore]);
  const redo = useCallback(() => restore(history.current.redo(state.current)), [restore]);

  const tidy = useCallback(() => {
    record();
    const positions = layeredLayout(
      state.current.nodes.map((n) => n.id),
      state.current.edges.map((e) => [e.source, e.target] as [string, string]),
    );
    setNodes((current) => current.map((n) => ({ ...n, position: positions.get(n.id) ?? n.position })));
    window.requestAnimationFrame(() => void flow.fitView({ padding: 0.2 }));
  }, [flow, record]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target)) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (e.key === "Delete" || e.key === "Backspace") deleteSelection();
      else if (mod && key === "z" && !e.shiftKey) undo();
      else if (mod && (key === "y" || (key === "z" && e.shiftKey))) redo();
      else if (mod && key === "c") copy();
      else if (mod && key === "v") paste();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [deleteSelection, undo, redo, copy, paste]);

  // Unsaved edits: leaving the page, by the browser or by a link, asks first.
  const dirtyRef = useRef(dirty);
  dirtyRef.current = dirty;
  useEffect(() => {
    setNavigationGuard(() => !dirtyRef.current || window.confirm("Leave this strategy? Your unsaved changes will be lost."));
    return () => setNavigationGuard(null);
  }, []);
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => e.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const renameNode = useCallback(
    (from: string, to: string) => {
      record();
      const renamed = renameNodeId(state.current.nodes, state.current.edges, from, to);
      setNodes(renamed.nodes);
      setEdges(renamed.edges);
    },
    [record],
  );

  const setParam = useCallback((nodeId: string, param: string, value: ParamValue | undefined) => {
    setDirty(true);
    setNodes((current) =>
      current.map((n) => {
        if (n.id !== nodeId) return n;
        const params = { ...n.data.params };
        if (value === undefined) delete params[param];
        else params[param] = value;
        return { ...n, data: { ...n.data, params } };
      }),
    );
  }, []);

  // Edges coloured by the type of series they carry.
  const styledEdges = useMemo(
    () =>
      edges.map((e) => {
        const source = nodeRefs.get(e.source);
        const type = source ? catalog.output(source.nodeType, e.sourceHandle ?? "")?.type : undefined;
        return { ...e, className: `edge-${type ?? "unknown"}` };
      }),
    [edges, nodeRefs, catalog],
  );

  // -- saving --------------------------------------------------------------------------------
  const invalid = validation.data !== undefined && !validation.data.valid && !checking;
  const onSave = () => {
    save.mutate(
      { id: source.id, name: name.trim() || "Untitled strategy", graph, expectedVersion: source.currentVersion },
      {
        onSuccess: (saved) => {
          setDirty(false);
          void queryClient.invalidateQueries({ queryKey: ["version", saved.id] });
          navigate(`/strategies/${saved.id}`, { replace: source.id !== undefined, force: true });
        },
      },
    );
  };
  const nextVersion = source.currentVersion === undefined ? 1 : source.currentVersion + 1;
  const viewingOld =
    source.viewingVersion !== undefined && source.viewingVersion !== source.currentVersion;

  const selected = nodes.filter((n) => n.selected);
  const single = selected.length === 1 ? selected[0]! : null;

  return (
    <CatalogContext.Provider value={catalog}>
      <ProblemsContext.Provider value={placed}>
        <div className="editor">
          <div className="editor-toolbar">
            <input
              className="strategy-name"
              value={name}
              onChange={(e) => (setName(e.target.value), setDirty(true))}
              aria-label="Strategy name"
            />
            {source.viewingVersion !== undefined && (
              <span className="muted">
                version {source.viewingVersion}
                {viewingOld && ` (current is ${source.currentVersion})`}
              </span>
            )}
            <ValidationStatus checking={checking} report={validation.data} error={validation.error} />
            <span className="spacer" />
            <button type="button" onClick={undo} title="Undo (Ctrl+Z)" disabled={!history.current.canUndo}>
              Undo
            </button>
            <button type="button" onClick={redo} title="Redo (Ctrl+Shift+Z)" disabled={!history.current.canRedo}>
              Redo
            </button>
            <button type="button" onClick={tidy} title="Lay the graph out left to right">
              Tidy up
            </button>
            <button
              type="button"
              className="primary"
              onClick={onSave}
              disabled={save.isPending || checking || invalid || (!dirty && source.id !== undefined)}
              title={invalid ? "Fix the problems first: the service stores only valid graphs" : undefined}
            >
              {save.isPending ? "Saving…" : source.id === undefined ? "Save strategy" : `Save as version ${nextVersion}`}
            </button>
            {source.id !== undefined && source.currentVersion !== undefined && (
              <>
                <Link
                  to={`/backtests/new?strategy=${source.id}&version=${source.viewingVersion ?? source.currentVersion}`}
                  title="Backtest the saved version shown (unsaved edits are not part of it)"
                >
                  Backtest
                </Link>
                <Link
                  to={`/sessions/new?strategy=${source.id}&version=${source.viewingVersion ?? source.currentVersion}`}
                  title="Start a live paper session of the saved version shown"
                >
                  Go live
                </Link>
              </>
            )}
          </div>
          {save.error && <ErrorBox error={save.error} />}
          {validation.error && !validation.isFetching && (
            <ErrorBox error={validation.error} onRetry={() => void validation.refetch()} />
          )}
          {source.draftProblems.length > 0 && (
            <div className="draft-banner">
              This version is a <b>draft migrated from Beta1</b>: it cannot run until a fixed graph is saved as version{" "}
              {nextVersion}. Its problems are marked on the canvas and listed below.
            </div>
          )}
          {initial.dropped.length > 0 && (
            <div className="draft-banner">
              {initial.dropped.length} edge(s) could not be drawn and will not be saved:{" "}
              {initial.dropped.map((e) => `${e.from} → ${e.to}`).join(", ")}
            </div>
          )}
          <div className="editor-body">
            <Palette catalog={catalog} onAdd={(type) => addNode(type)} />
            <div className="canvas" ref={wrapper} onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
              <ReactFlow<FlowNode, FlowEdge>
                nodes={nodes}
                edges={styledEdges}
                nodeTypes={NODE_TYPES}
                onNodesChange={onNodesChange}
                onEdgesChange={onEdgesChange}
                onConnect={onConnect}
                onConnectStart={() => setHint(null)}
                onConnectEnd={() => {
                  // Leave a refusal's reason up long enough to be read.
                  window.clearTimeout(hintTimer.current);
                  hintTimer.current = window.setTimeout(() => setHint(null), 2500);
                }}
                isValidConnection={isValidConnection}
                onNodeDragStart={record}
                connectionMode={ConnectionMode.Strict}
                deleteKeyCode={null}
                fitView
                fitViewOptions={{ padding: 0.2, maxZoom: 1.2 }}
                minZoom={0.1}
                proOptions={{ hideAttribution: true }}
              >
                <Background gap={16} />
                <Controls showInteractive={false} />
                <MiniMap pannable zoomable />
              </ReactFlow>
              {hint && <div className="connection-hint">{hint}</div>}
              {nodes.length === 0 && (
                <div className="canvas-empty">
                  Drag nodes from the palette, or click one. A strategy needs an entry signal (<code>enter_long</code>{" "}
                  or <code>enter_short</code>).
                </div>
              )}
            </div>
            <aside className="side-panel">
              {single ? (
                <ParamsPanel
                  node={single}
                  catalog={catalog}
                  tunables={parameters ?? {}}
                  problems={placed.byNode.get(single.id) ?? []}
                  onBeginEdit={record}
                  onParam={(param, value) => setParam(single.id, param, value)}
                  onRename={(to) => renameNode(single.id, to)}
                  takenIds={nodeIds}
                />
              ) : (
                <>
                  <ProblemsList
                    problems={allProblems}
                    draftProblems={source.draftProblems}
                    onFocus={(id) => focusNode(flow, setNodes, id)}
                  />
                  <TunablesPanel
                    parameters={parameters ?? {}}
                    uses={tunableUses}
                    onBeginEdit={record}
                    onChange={(next) => (setParameters(next), setDirty(true))}
                  />
                </>
              )}
              {source.id !== undefined && <VersionsPanel strategyId={source.id} viewing={source.viewingVersion} />}
              <KeyboardHelp />
            </aside>
          </div>
        </div>
      </ProblemsContext.Provider>
    </CatalogContext.Provider>
  );
}

/** Near `around`, the first spot (going down) where a new node covers no other node. */
function freeSpot(around: { x: number; y: number }, nodes: readonly FlowNode[]): { x: number; y: number } {
  const [w, h] = [200, 100];
  const spot = { x: around.x - w / 2, y: around.y - h / 2 };
  const covers = (n: FlowNode) => {
    const nw = n.measured?.width ?? w;
    const nh = n.measured?.height ?? h;
    return spot.x < n.position.x + nw && n.position.x < spot.x + w && spot.y < n.position.y + nh && n.position.y < spot.y + h;
  };
  for (let i = 0; i < 50 && nodes.some(covers); i++) spot.y += 40;
  return spot;
}

function focusNode(
  flow: ReturnType<typeof useReactFlow<FlowNode, FlowEdge>>,
  setNodes: (f: (n: FlowNode[]) => FlowNode[]) => void,
  id: string,
) {
  setNodes((current) => current.map((n) => ({ ...n, selected: n.id === id })));
  const node = flow.getNode(id);
  if (node) void flow.setCenter(node.position.x + 80, node.position.y + 40, { zoom: 1.1, duration: 300 });
}

function ValidationStatus({
  checking,
  report,
  error,
}: {
  checking: boolean;
  report: { valid: boolean; problems: unknown[]; summary?: { warmup: number } | null } | undefined;
  error: unknown;
}) {
  if (error) return <span className="status status-error">not validated: see the error below</span>;
  if (report === undefined) return <span className="status">checking…</span>;
  const text = report.valid
    ? `valid · warm-up ${report.summary?.warmup ?? 0} bars`
    : `${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}`;
  return (
    <span className={`status ${report.valid ? "status-ok" : "status-problems"}${checking ? " stale" : ""}`}>
      {checking ? "checking… " : ""}
      {text}
    </span>
  );
}

function ProblemsList({
  problems,
  draftProblems,
  onFocus,
}: {
  problems: GraphProblem[];
  draftProblems: GraphProblem[];
  onFocus: (nodeId: string) => void;
}) {
  return (
    <div className="problems-panel">
      <h2>Problems</h2>
      {problems.length === 0 ? (
        <p className="muted">None: the validator accepts this graph.</p>
      ) : (
        <ul className="problems">
          {problems.map((p, i) => (
            <li key={i}>
              {p.node_id ? (
                <button type="button" className="link" onClick={() => onFocus(p.node_id!)}>
                  {p.node_id}
                  {p.port ? `.${p.port}` : ""}
                </button>
              ) : null}{" "}
              <code>{p.code}</code> {p.message}
            </li>
          ))}
        </ul>
      )}
      {draftProblems.length > 0 && (
        <>
          <h3>Found when migrating from Beta1</h3>
          <ul className="problems muted">
            {draftProblems.map((p, i) => (
              <li key={i}>
                <code>{p.code}</code> {p.message}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function KeyboardHelp() {
  return (
    <details className="keyboard-help">
      <summary>Keyboard</summary>
      <dl>
        <dt>Delete / Backspace</dt>
        <dd>delete the selection</dd>
        <dt>Ctrl+Z, Ctrl+Shift+Z / Ctrl+Y</dt>
        <dd>undo, redo</dd>
        <dt>Ctrl+C, Ctrl+V</dt>
        <dd>copy and paste nodes</dd>
        <dt>Shift+drag</dt>
        <dd>select several nodes</dd>
      </dl>
    </details>
  );
}
