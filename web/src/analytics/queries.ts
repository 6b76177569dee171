/** Server state of analytics: a run's or a portfolio's report, portfolios, the HTML tear sheet. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { unwrap, type Api } from "../api/client";
import type { components } from "../api/schema";
import { useApi } from "../auth/session";
import { readReport } from "./report";

export type ReportKind = "backtest" | "session" | "portfolio";
export type PortfolioCreate = components["schemas"]["PortfolioCreate"];

export interface Portfolio {
  id: string;
  name: string;
  weighting: string;
  members: { kind: string; id: string; weight?: number | null }[];
  benchmark: string | null;
  created_at: string;
}

export function useReport(kind: ReportKind, id: string) {
  const api = useApi();
  return useQuery({
    queryKey: ["analytics", kind, id],
    queryFn: async () => {
      const params = { path: { run_id: id }, query: { points: 2000 } };
      const json =
        kind === "backtest"
          ? await unwrap(api.GET("/api/analytics/backtests/{run_id}", { params }))
          : kind === "session"
            ? await unwrap(api.GET("/api/analytics/sessions/{run_id}", { params }))
            : await unwrap(api.GET("/api/analytics/portfolios/{portfolio_id}", { params: { path: { portfolio_id: id }, query: { points: 2000 } } }));
      return readReport(json);
    },
    staleTime: 30_000,
  });
}

export function usePortfolios() {
  const api = useApi();
  return useQuery({
    queryKey: ["portfolios"],
    queryFn: async () => {
      const json = (await unwrap(api.GET("/api/analytics/portfolios"))) as { portfolios?: Portfolio[] };
      return json.portfolios ?? [];
    },
  });
}

export function useCreatePortfolio() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (body: PortfolioCreate) => (await unwrap(api.POST("/api/analytics/portfolios", { body }))) as unknown as Portfolio,
    onSettled: () => void client.invalidateQueries({ queryKey: ["portfolios"] }),
  });
}

export function useDeletePortfolio() {
  const api = useApi();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/api/analytics/portfolios/{portfolio_id}", { params: { path: { portfolio_id: id } } })),
    onSettled: () => void client.invalidateQueries({ queryKey: ["portfolios"] }),
  });
}

/**
 * Saves the self-contained HTML tear sheet as a file. It is fetched with the session's token
 * (a plain link would carry none) and saved rather than opened: a page opened from the app would
 * inherit the app's Content-Security-Policy, which refuses the report's inline styles.
 */
export async function downloadHtmlReport(api: Api, kind: ReportKind, id: string): Promise<void> {
  const html = await unwrap(
    api.GET("/api/analytics/reports/{kind}/{report_id}.html", { params: { path: { kind, report_id: id } }, parseAs: "text" }),
  );
  const url = URL.createObjectURL(new Blob([html as unknown as string], { type: "text/html" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `algotrade-${kind}-${id}.html`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
