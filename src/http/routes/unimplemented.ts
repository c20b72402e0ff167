/**
 * Routes of the documented API (docs/http.md) whose capability the library does not have yet. They exist (so clients and
 * the OpenAPI document see the whole API), authenticate like the others, and answer 501 with
 * `error_code: NOT_IMPLEMENTED`; the OpenAPI document marks them `x-kura-not-implemented`.
 * Every documented route is built today, so the list is empty.
 */
import type { HttpMethod, RouteSpec } from "../route.js";

/** A documented route that answers 501 until its capability exists. */
export function pending(
  method: HttpMethod,
  path: string,
  operationId: string,
  summary: string,
  tag: string,
  why: string,
  extra: Partial<RouteSpec> = {},
): RouteSpec {
  return { method, path, operationId, summary, tag, responses: {}, notImplemented: why, ...extra };
}

export function unimplementedRoutes(): RouteSpec[] {
  return [];
}
