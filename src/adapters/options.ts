/**
 * Turn a zod schema failure into one `CONFIG_INVALID` error that lists every problem with its
 * path, so a user fixes their config in one pass.
 */
import type { z } from "zod";
import { KuraError } from "../core/errors.js";

export interface ConfigProblem {
  path: string;
  message: string;
}

export function zodProblems(error: z.ZodError, basePath: string): ConfigProblem[] {
  return error.issues.map((issue) => ({
    path: [basePath, ...issue.path.map(String)].filter(Boolean).join("."),
    message: issue.message,
  }));
}

export function configInvalid(problems: ConfigProblem[], operation = "config"): KuraError {
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
  return new KuraError(
    "CONFIG_INVALID",
    `invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${lines}`,
    {
      operation,
      context: { problems },
    },
  );
}

export function parseOptions<S extends z.ZodType>(schema: S, raw: unknown, basePath: string): z.infer<S> {
  const result = schema.safeParse(raw ?? {});
  if (!result.success) throw configInvalid(zodProblems(result.error, basePath));
  return result.data;
}
