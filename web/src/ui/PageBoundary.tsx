/**
 * Around a lazily loaded page: the loading state while its chunk arrives, and its problem with a
 * retry when the chunk cannot be loaded (offline, or a rebuild replaced it: reloading fixes that)
 * or the page throws.
 */
import { Component, Suspense, type ReactNode } from "react";
import { ErrorBox, Loading } from "./ErrorBox";

class Boundary extends Component<{ children: ReactNode }, { error: unknown }> {
  state = { error: null as unknown };

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  render() {
    if (this.state.error !== null)
      return (
        <div className="page">
          <ErrorBox error={this.state.error} onRetry={() => location.reload()} />
        </div>
      );
    return this.props.children;
  }
}

export function PageBoundary({ what, children }: { what: string; children: ReactNode }) {
  return (
    <Boundary>
      <Suspense fallback={<Loading what={what} />}>{children}</Suspense>
    </Boundary>
  );
}
