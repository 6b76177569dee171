/** The app shell: the signed-in layout and the page for the current path. */
import { useQuery } from "@tanstack/react-query";
import { lazy, useEffect } from "react";
import { unwrap } from "./api/client";
import { ApiKeysPage } from "./apikeys/ApiKeysPage";
import { AuthPage } from "./auth/AuthPage";
import { BacktestsPage } from "./backtests/BacktestsPage";
import { LaunchPage } from "./backtests/LaunchPage";
import { NewSessionPage } from "./sessions/NewSessionPage";
import { SessionsPage } from "./sessions/SessionsPage";
import { useSession } from "./auth/session";
import { EditorPage } from "./editor/EditorPage";
import { Link, match, navigate, useLocation } from "./router";
import { StrategiesPage } from "./strategies/StrategiesPage";
import { Loading } from "./ui/ErrorBox";
import { PageBoundary } from "./ui/PageBoundary";

// Pages with charts load on demand: the charting library stays out of the initial bundle.
const BacktestPage = lazy(() => import("./backtests/BacktestPage"));
const SweepPage = lazy(() => import("./backtests/SweepPage"));
const SessionPage = lazy(() => import("./sessions/SessionPage"));
// The agents, data and analytics pages are not needed at sign-in: they load when first opened.
const AgentsPage = lazy(() => import("./agents/AgentsPage"));
const AgentPage = lazy(() => import("./agents/AgentPage"));
const DataPage = lazy(() => import("./data/DataPage"));
const TearSheetPage = lazy(() => import("./analytics/TearSheetPage"));
const PortfoliosPage = lazy(() => import("./analytics/PortfoliosPage"));

export function App() {
  const session = useSession();
  const { pathname } = useLocation();
  const publicPage = pathname === "/login" || pathname === "/signup";

  useEffect(() => {
    if (session.resuming) return;
    if (!session.signedIn && !publicPage) {
      const next = pathname === "/" ? "" : `?next=${encodeURIComponent(pathname + location.search)}`;
      navigate(`/login${next}`, { replace: true, force: true });
    } else if (session.signedIn && (publicPage || pathname === "/")) {
      navigate("/strategies", { replace: true, force: true });
    }
  }, [session.signedIn, session.resuming, publicPage, pathname]);

  if (session.resuming) return <Loading what="your session" />;
  if (pathname === "/login") return <AuthPage mode="login" />;
  if (pathname === "/signup") return <AuthPage mode="signup" />;
  if (!session.signedIn) return null;
  return (
    <div className="shell">
      <TopBar />
      <main>
        <Page pathname={pathname} />
      </main>
    </div>
  );
}

function Page({ pathname }: { pathname: string }) {
  if (pathname === "/strategies" || pathname === "/") return <StrategiesPage />;
  if (match("/strategies/new", pathname)) return <EditorPage />;
  const version = match("/strategies/:id/versions/:n", pathname);
  if (version) return <EditorPage strategyId={version.id} version={Number(version.n)} />;
  const strategy = match("/strategies/:id", pathname);
  if (strategy) return <EditorPage strategyId={strategy.id} />;
  if (pathname === "/backtests") return <BacktestsPage />;
  if (pathname === "/backtests/new") return <LaunchPage kind="backtest" />;
  if (pathname === "/backtests/sweeps/new") return <LaunchPage kind="sweep" />;
  const sweep = match("/backtests/sweeps/:id", pathname);
  if (sweep)
    return (
      <PageBoundary what="the sweep page">
        <SweepPage key={sweep.id} jobId={sweep.id!} />
      </PageBoundary>
    );
  if (pathname === "/settings/api-keys") return <ApiKeysPage />;
  const tearSheet = match("/analytics/:kind/:id", pathname);
  if (tearSheet && (tearSheet.kind === "backtests" || tearSheet.kind === "sessions" || tearSheet.kind === "portfolios")) {
    const kind = tearSheet.kind === "backtests" ? "backtest" : tearSheet.kind === "sessions" ? "session" : "portfolio";
    return (
      <PageBoundary what="the tear sheet">
        <TearSheetPage key={`${kind}/${tearSheet.id}`} kind={kind} id={tearSheet.id!} />
      </PageBoundary>
    );
  }
  if (pathname === "/analytics/portfolios" || pathname === "/analytics")
    return (
      <PageBoundary what="your portfolios">
        <PortfoliosPage />
      </PageBoundary>
    );
  if (pathname === "/data")
    return (
      <PageBoundary what="the data page">
        <DataPage />
      </PageBoundary>
    );
  if (pathname === "/agents")
    return (
      <PageBoundary what="the agents">
        <AgentsPage />
      </PageBoundary>
    );
  const agent = match("/agents/:id", pathname);
  if (agent)
    return (
      <PageBoundary what="the agent">
        <AgentPage key={agent.id} agentId={agent.id!} />
      </PageBoundary>
    );
  if (pathname === "/sessions") return <SessionsPage />;
  if (pathname === "/sessions/new") return <NewSessionPage />;
  const liveSession = match("/sessions/:id", pathname);
  if (liveSession)
    return (
      <PageBoundary what="the session page">
        <SessionPage key={liveSession.id} sessionId={liveSession.id!} />
      </PageBoundary>
    );
  const backtest = match("/backtests/:id", pathname);
  if (backtest)
    return (
      <PageBoundary what="the backtest page">
        <BacktestPage key={backtest.id} jobId={backtest.id!} />
      </PageBoundary>
    );
  return (
    <div className="page">
      <div className="error-box" role="alert">
        <strong>Not found</strong>
        <div>There is no page at {pathname}.</div>
      </div>
      <Link to="/strategies">Back to your strategies</Link>
    </div>
  );
}

function TopBar() {
  const session = useSession();
  const me = useQuery({
    queryKey: ["me"],
    queryFn: () => unwrap(session.api.GET("/api/auth/me")),
    staleTime: 5 * 60_000,
  });
  return (
    <header className="topbar">
      <Link to="/strategies" className="brand">
        AlgoTrade
      </Link>
      <nav>
        <Link to="/strategies">Strategies</Link>
        <Link to="/backtests">Backtests</Link>
        <Link to="/sessions">Live</Link>
        <Link to="/agents">Agents</Link>
        <Link to="/data">Data</Link>
        <Link to="/analytics/portfolios">Analytics</Link>
      </nav>
      <span className="spacer" />
      <Link to="/settings/api-keys">API keys</Link>
      <span className="muted">{me.data?.email}</span>
      <button
        type="button"
        onClick={() => {
          navigate("/strategies"); // asks first when the editor has unsaved changes
          if (location.pathname === "/strategies") void session.logOut().then(() => navigate("/login", { force: true }));
        }}
      >
        Log out
      </button>
    </header>
  );
}
