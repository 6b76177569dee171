/**
 * The "Live data" panel of a page that follows a channel: per family its mode, where the page
 * takes it from, pushes (and how many were shown), REST answers, and in shadow mode how the
 * pushes compared with the REST answers after them, with the last difference.
 */
import { emptyStats, formatDifference, liveNote, shownFrom, type Family } from "./cutover";
import type { Cutover } from "./useCutover";

export function LivePanel<S extends string>({ cut, families, pollSeconds }: { cut: Cutover<S>; families: readonly Family[]; pollSeconds: number }) {
  const note = liveNote(families, cut.modes, cut.socket, pollSeconds);
  return (
    <details className="live-panel" data-testid="live-panel">
      <summary>
        Live data <span className="muted small live-note" data-testid="live-updates">{note}</span>
      </summary>
      <table className="table small" aria-label="Live data by family">
        <thead>
          <tr>
            <th>Family</th>
            <th>Mode</th>
            <th>Shown from</th>
            <th className="num">Pushed</th>
            <th className="num">Shown</th>
            <th className="num">Polled</th>
            <th className="num" title="shadow pushes compared with the REST answer after them">Agree / differ / moved on / unchecked</th>
            <th>Last difference</th>
          </tr>
        </thead>
        <tbody>
          {families.map((f) => {
            const s = cut.ledger.stats[f] ?? emptyStats();
            const mode = cut.modes?.[f];
            return (
              <tr key={f} data-testid={`live-family-${f}`}>
                <th scope="row">{f}</th>
                <td>{mode ?? "unknown"}</td>
                <td>{shownFrom(mode, cut.socket)}</td>
                <td className="num">{s.pushed}</td>
                <td className="num">{s.applied}</td>
                <td className="num">{s.polled}</td>
                <td className="num">
                  {s.agreed} / {s.differed} / {s.movedOn} / {s.unchecked}
                </td>
                <td>
                  {s.lastDifference === null ? (
                    <span className="muted">—</span>
                  ) : (
                    <>
                      <code>{s.lastDifference.type}</code> {new Date(s.lastDifference.at).toLocaleTimeString()}:{" "}
                      {s.lastDifference.differences.map(formatDifference).join("; ")}
                    </>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="muted small">
        {cut.ledger.pending.length > 0 && `${cut.ledger.pending.length} push(es) waiting for the next REST answer. `}A family in live mode
        is shown from pushes and not polled while the socket is up; in shadow and rest it is polled, and shadow pushes are only
        compared. Whatever the mode, the page polls while the socket is down.
      </p>
    </details>
  );
}
