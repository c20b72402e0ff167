/**
 * Records every unhandled rejection and uncaught exception while a test file runs, so a test
 * can assert that serving a request never let an error escape the request path (the process
 * would die under `kura serve`).
 */
import { afterAll, beforeAll } from "vitest";

export interface ProcessWatch {
  /** What escaped so far, as text. */
  readonly escaped: string[];
}

export function watchProcess(): ProcessWatch {
  const escaped: string[] = [];
  const onRejection = (reason: unknown) => {
    escaped.push(`unhandledRejection: ${describe(reason)}`);
  };
  const onException = (error: unknown) => {
    escaped.push(`uncaughtException: ${describe(error)}`);
  };
  beforeAll(() => {
    process.on("unhandledRejection", onRejection);
    process.on("uncaughtException", onException);
  });
  afterAll(() => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  });
  return { escaped };
}

function describe(value: unknown): string {
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}
