/** Node filesystem errors → KuraError. */
import { KuraError } from "../../../core/errors.js";

export function fsError(e: unknown, operation: string, key: string | undefined): KuraError {
  if (e instanceof KuraError) return e.withOperation(operation);
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const context = { key, errno: code };
  switch (code) {
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new KuraError("BLOB_ACCESS_DENIED", `${operation}: permission denied on the blob directory`, {
        operation,
        context,
        cause: e,
      });
    case "ENOSPC":
    case "EDQUOT":
      // Nothing was written (the temp file is removed); deletes still work to free space.
      return new KuraError("STORAGE_FULL", `${operation}: the disk holding the blob directory is full`, {
        operation,
        context: { ...context, retryAfterSeconds: 60 },
        cause: e,
      });
    case "EMFILE":
    case "ENFILE":
    case "EAGAIN":
    case "EBUSY":
    case "EIO":
      return new KuraError("BLOB_BACKEND_UNAVAILABLE", `${operation}: ${code} from the filesystem`, {
        operation,
        context,
        cause: e,
      });
    case "ENOTDIR":
    case "EISDIR":
    case "EEXIST":
    case "ENAMETOOLONG":
      return new KuraError(
        "BLOB_PATH_CONFLICT",
        `${operation}: the path for this key is occupied by a foreign file`,
        {
          operation,
          context,
          cause: e,
        },
      );
    default:
      return new KuraError("BLOB_BACKEND_ERROR", `${operation}: ${(e as Error)?.message ?? String(e)}`, {
        operation,
        context,
        cause: e,
      });
  }
}

export function isErrno(e: unknown, ...codes: string[]): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}
