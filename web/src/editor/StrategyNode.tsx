/** A node on the canvas: its type and id, a row per port (typed, coloured), its problems. */
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo, useContext } from "react";
import { CatalogContext, ProblemsContext } from "./context";
import { isParamRef, type FlowNode, type ParamValue } from "./graph";

function paramText(value: ParamValue): string {
  return isParamRef(value) ? `$${value.$param}` : String(value);
}

function StrategyNodeView({ id, data, selected }: NodeProps<FlowNode>) {
  const catalog = useContext(CatalogContext);
  const problems = useContext(ProblemsContext);
  const spec = catalog.get(data.nodeType);
  const nodeProblems = problems.byNode.get(id) ?? [];
  const portProblem = (port: string) => problems.byPort.get(`${id}.${port}`);
  const params = Object.entries(data.params);
  const classes = ["strategy-node", `category-${spec?.category ?? "unknown"}`];
  if (selected) classes.push("selected");
  if (nodeProblems.length > 0) classes.push("has-problems");
  return (
    <div className={classes.join(" ")} title={nodeProblems.map((p) => p.message).join("\n") || spec?.doc}>
      <div className="node-header">
        <span className="node-type">{data.nodeType}</span>
        <span className="node-id">{id}</span>
        {nodeProblems.length > 0 && (
          <span className="problem-badge" aria-label={`${nodeProblems.length} problem(s)`}>
            {nodeProblems.length}
          </span>
        )}
      </div>
      {spec === undefined && <div className="node-warning">unknown node type: replace this node</div>}
      <div className="node-ports">
        <div className="node-inputs">
          {spec?.inputs.map((port) => {
            const problem = portProblem(port.name);
            return (
              <div key={port.name} className="port-row" title={problem?.map((p) => p.message).join("\n") ?? port.doc}>
                <Handle
                  type="target"
                  position={Position.Left}
                  id={port.name}
                  className={`port port-${port.type}${problem ? " port-problem" : ""}${port.required ? "" : " port-optional"}`}
                />
                <span className={problem ? "port-label problem" : "port-label"}>
                  {port.name}
                  {!port.required && <em> opt.</em>}
                </span>
              </div>
            );
          })}
        </div>
        <div className="node-outputs">
          {spec?.outputs.map((port) => {
            const problem = portProblem(port.name);
            return (
              <div key={port.name} className="port-row out" title={problem?.map((p) => p.message).join("\n") ?? port.doc}>
                <span className={problem ? "port-label problem" : "port-label"}>{port.name}</span>
                <Handle
                  type="source"
                  position={Position.Right}
                  id={port.name}
                  isConnectable={!spec.sink}
                  className={`port port-${port.type}${problem ? " port-problem" : ""}`}
                />
              </div>
            );
          })}
        </div>
      </div>
      {params.length > 0 && (
        <div className="node-params">
          {params.map(([name, value]) => (
            <span key={name}>
              {name} <b>{paramText(value)}</b>
            </span>
          ))}
        </div>
      )}
    </div>
  );
}

export const StrategyNode = memo(StrategyNodeView);
