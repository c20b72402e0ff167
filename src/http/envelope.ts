/**
 * The response envelope of API-2 (seed 003):
 * success `{success: true, data, timestamp, request_id}`,
 * error `{success: false, error, error_code, timestamp, request_id}`.
 * Streamed bodies, HEAD, 204, `/metrics` and `/openapi.json` are sent raw; every response
 * carries `X-Request-Id`.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { KuraError } from "../core/errors.js";
import { publicMessage } from "./errors.js";

export interface SuccessEnvelope<T> {
  success: true;
  data: T;
  timestamp: string;
  request_id: string;
}

export interface ErrorEnvelope {
  success: false;
  error: string;
  error_code: string;
  timestamp: string;
  request_id: string;
  /** Field-level problems of a rejected request, when there are any. */
  details?: unknown;
}

export const REQUEST_ID_HEADER = "x-request-id";

/** A caller's request id is kept when it is short and plain; otherwise a new UUID is made. */
const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === "string" && CALLER_REQUEST_ID.test(given) ? given : randomUUID();
}

export function success<T>(requestId: string, data: T, now = Date.now()): SuccessEnvelope<T> {
  return { success: true, data, timestamp: new Date(now).toISOString(), request_id: requestId };
}

export function failure(requestId: string, error: KuraError, now = Date.now()): ErrorEnvelope {
  const problems = error.context.problems;
  return {
    success: false,
    error: publicMessage(error),
    error_code: error.code,
    timestamp: new Date(now).toISOString(),
    request_id: requestId,
    ...(Array.isArray(problems) ? { details: problems } : {}),
  };
}
