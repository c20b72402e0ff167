/**
 * Turn a zod schema failure into one `CONFIG_INVALID` error that lists every problem with its
 * path, so a user fixes their config in one pass.
 */
import type { z } from "zod";
import { KuraError } from "./errors.js";

export interface ConfigProblem {
  path: string;
  message: string;
}

export function zodProblems(error: z.ZodError, basePath: string): ConfigProblem[] {
  return error.issues.flatMap((issue) => {
    const at = (...tail: string[]) =>
      [basePath, ...issue.path.map(String), ...tail].filter(Boolean).join(".");
    // One problem per unknown key, at the key's own path, so a typo is found where it was made.
    if (issue.code === "unrecognized_keys")
      return issue.keys.map((key) => ({ path: at(key), message: "unknown key" }));
    return [{ path: at(), message: issue.message }];
  });
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
