/**
 * The one place error kinds become process exit codes (sysexits-style where one fits).
 */
import type { ErrorKind, KuraError } from "../core/errors.js";

const EXIT_CODES: Record<ErrorKind, number> = {
  InvalidArgument: 64, // EX_USAGE
  ConfigInvalid: 78, // EX_CONFIG
  NotFound: 66, // EX_NOINPUT
  AlreadyExists: 73, // EX_CANTCREAT
  ConditionFailed: 73,
  Conflict: 75, // EX_TEMPFAIL
  PayloadTooLarge: 65, // EX_DATAERR
  QuotaExceeded: 73,
  Unsupported: 69, // EX_UNAVAILABLE
  Unauthenticated: 77, // EX_NOPERM
  PermissionDenied: 77,
  RateLimited: 75,
  Unavailable: 69,
  Corrupt: 65,
  Unexpected: 70, // EX_SOFTWARE
};

export function exitCodeFor(e: KuraError): number {
  return EXIT_CODES[e.kind];
}
