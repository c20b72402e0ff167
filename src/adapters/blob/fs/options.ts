/** The `fs` blob store's options. */
import { z } from "zod";

export const fsOptionsSchema = z
  .object({
    /** Directory holding the objects. Default `./data/blobs` (the config layer resolves it). */
    base_path: z.string().min(1).default("./data/blobs"),
    /**
     * Base URL of `kura serve`, used in presigned URLs. Default: the URL the server announces
     * (`deps.serverUrl`), else `http://127.0.0.1:8787` (`kura serve` on its defaults).
     */
    public_url: z.url().optional(),
    /** Secret for presigned URLs (use `env:VAR`). Default: generated once into `base_path/~kura/presign.key`. */
    presign_secret: z.string().min(16).optional(),
    /**
     * File holding the presign secret when `presign_secret` is not set; created (0600) on first
     * use. Default `base_path/~kura/presign.key`. Stores that should sign alike share one file.
     */
    presign_secret_file: z.string().min(1).optional(),
    /** Objects at most this big are read in one call; larger ones stream. Default 1 MiB. */
    small_object_bytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * 1024),
    /**
     * Bodies at most this big are written and read with synchronous system calls on the calling
     * thread (with `durability: os`): for small files the thread-pool round trips of async I/O
     * cost more than the calls themselves (see docs/adr/0007-fs-layout.md). 0 disables. Default 64 KiB.
     */
    sync_io_max_bytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024),
    /**
     * How often temp files left by failed or killed writers are swept from `~kura/tmp` (also done
     * once at open). 0 sweeps only at open. Default 300000 (5 min).
     */
    temp_sweep_interval_ms: z.number().int().min(0).default(300_000),
    /**
     * A temp file no upload of this process is writing is swept once it has not changed for this
     * long (another process sharing the directory may still be writing a younger one; its
     * uploads time out long before). Default 900000 (15 min).
     */
    temp_grace_ms: z.number().int().min(0).default(900_000),
  })
  .strict();
export type FsOptions = z.infer<typeof fsOptionsSchema>;
