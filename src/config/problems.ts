/**
 * Configuration problems are collected, never thrown one by one: the loader reports every
 * problem in one `CONFIG_INVALID` error so a user fixes their configuration in one pass.
 */
import type { z } from "zod";
import { KuraError } from "../core/errors.js";
import { zodProblems } from "../core/options.js";

export type ConfigProblemCode = "CONFIG_INVALID" | "CONFIG_CONFLICT" | "CONFIG_ENV_MISSING";

export interface ConfigIssue {
  /** Dotted config path (`server.port`), or the environment variable's name for seed env names. */
  path: string;
  /** What is wrong, never the offending value when it could be a secret. */
  message: string;
  /** The specific code: a contradiction, a missing `env:VAR`, or anything else invalid. */
  code: ConfigProblemCode;
}

export function issue(
  path: string,
  message: string,
  code: ConfigProblemCode = "CONFIG_INVALID",
): ConfigIssue {
  return { path, message, code };
}

/** zod issues as config issues; "expected string, received undefined" reads "is required". */
export function fromZod(error: z.ZodError, basePath: string): ConfigIssue[] {
  return zodProblems(error, basePath).map((p) =>
    issue(p.path, /received undefined$/.test(p.message) ? "is required" : p.message),
  );
}

/** Problems reported by another module (an adapter's `parseOptions`), if that is what `e` is. */
export function problemsOf(e: unknown): ConfigIssue[] | undefined {
  if (!(e instanceof KuraError) || e.kind !== "ConfigInvalid") return undefined;
  const raw = e.context.problems;
  if (!Array.isArray(raw)) return [issue("", e.message)];
  return raw.map((p: { path?: unknown; message?: unknown; code?: unknown }) =>
    issue(
      typeof p.path === "string" ? p.path : "",
      typeof p.message === "string" ? p.message : String(p.message),
      p.code === "CONFIG_CONFLICT" || p.code === "CONFIG_ENV_MISSING" ? p.code : "CONFIG_INVALID",
    ),
  );
}

export function configError(problems: readonly ConfigIssue[], operation: string): KuraError {
  const n = problems.length;
  const lines = problems.map((p) => `  ${p.path || "(root)"}: ${p.message}`).join("\n");
  return new KuraError(
    "CONFIG_INVALID",
    `invalid configuration (${n} problem${n === 1 ? "" : "s"}):\n${lines}`,
    {
      operation,
      context: { problems: problems.map((p) => ({ ...p })) },
    },
  );
}
