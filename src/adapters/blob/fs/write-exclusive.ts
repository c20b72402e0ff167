/** Exclusive creation of a small file off the event loop, for a put of a fresh key. */
import { close as closeCb, open as openCb, write as writeCb, writev as writevCb } from "node:fs";

/**
 * open(O_CREAT|O_EXCL) + writev + close with the callback API: the cheapest way to
 * create a small file off the event loop. `onCreated` runs once the file exists (so a failure
 * after it knows there is a file to remove).
 */
export function writeExclusive(path: string, chunks: Uint8Array[], onCreated: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    openCb(path, "wx", (openError, fd) => {
      if (openError) {
        reject(openError);
        return;
      }
      onCreated();
      const finish = (error: Error | null) => {
        closeCb(fd, (closeError) => {
          const e = error ?? closeError;
          if (e) reject(e);
          else resolve();
        });
      };
      const synced = () => finish(null);
      const total = chunks.reduce((n, c) => n + c.length, 0);
      writevCb(fd, chunks, (writeError, written) => {
        if (writeError) {
          finish(writeError);
          return;
        }
        if (written === total) {
          synced();
          return;
        }
        // A short write (rare on regular files): write the rest from where it stopped.
        const rest = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.length))).subarray(
          written,
        );
        const more = (offset: number) => {
          writeCb(fd, rest, offset, rest.length - offset, null, (e, n) => {
            if (e) finish(e);
            else if (offset + n >= rest.length) synced();
            else more(offset + n);
          });
        };
        more(0);
      });
    });
  });
}
