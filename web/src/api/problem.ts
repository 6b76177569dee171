/**
 * Every error a request can end in, as the problem the platform answers
 * (application/problem+json: title and detail, and for validation an `errors` list).
 * Network failures and non-problem answers are turned into the same shape, so the UI has one
 * way to show them.
 */
import type { components } from "./schema";

export type Problem = components["schemas"]["Problem"];

export class ApiError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(`${problem.title}: ${problem.detail}`);
    this.name = "ApiError";
    this.problem = problem;
  }

  get status(): number {
    return this.problem.status;
  }
}

export function isProblem(body: unknown): body is Problem {
  if (typeof body !== "object" || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.title === "string" && typeof b.status === "number";
}

/** The problem an answer describes, whatever its body was. */
export function problemFrom(status: number, body: unknown, statusText = ""): Problem {
  if (isProblem(body)) {
    return {
      ...body,
      type: body.type ?? "about:blank",
      code: body.code ?? `http_${status}`,
      detail: body.detail ?? "",
    };
  }
  const detail =
    typeof body === "string" && body.trim() !== ""
      ? body.trim().slice(0, 300)
      : "the server's answer carried no explanation";
  return {
    type: "about:blank",
    code: `http_${status}`,
    status,
    title: statusText || `HTTP ${status}`,
    detail,
  };
}

export function networkProblem(error: unknown): Problem {
  return {
    type: "about:blank",
    code: "network_error",
    status: 0,
    title: "The gateway cannot be reached",
    detail: error instanceof Error ? error.message : String(error),
  };
}

/** Any thrown value as a problem (what error boxes display). */
export function asProblem(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  return {
    type: "about:blank",
    code: "client_error",
    status: 0,
    title: "Something went wrong in the page",
    detail: error instanceof Error ? error.message : String(error),
  };
}

/** A 404: asking again will not help (the page offers no retry). */
export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}
