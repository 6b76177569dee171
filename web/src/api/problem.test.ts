import { describe, expect, it } from "vitest";
import { ApiError, isNotFound, problemFrom } from "./problem";

describe("isNotFound", () => {
  it("is true only for a 404 problem", () => {
    expect(isNotFound(new ApiError(problemFrom(404, { title: "Not found", status: 404 })))).toBe(true);
    expect(isNotFound(new ApiError(problemFrom(503, null, "Service Unavailable")))).toBe(false);
    expect(isNotFound(new Error("404"))).toBe(false);
  });
});
