/**
 * One registry shape for every plane: a plane's adapter definitions by backend name, each loaded
 * on first use (so a deployment loads only the SDKs and addons it configured), and an unknown
 * name refused with `CONFIG_INVALID` at the config path that named it.
 */
import { KuraError } from "../core/errors.js";

export interface Registry<D> {
  /** Every name the registry answers to, aliases included. */
  readonly backends: readonly string[];
  /** The definition of `name`; `CONFIG_INVALID` for a name the plane does not have. */
  definition(name: string): Promise<D>;
}

export function createRegistry<D>(
  names: {
    /** What an unknown name is called in the error: "storage backend", "embedder", … */
    what: string;
    /** The error's operation: `blob.registry`, … */
    operation: string;
    /** Where the config names the backend: `storage.backend`, … */
    path: string;
  },
  loaders: Readonly<Record<string, () => Promise<D>>>,
): Registry<D> {
  const backends = Object.freeze(Object.keys(loaders));
  return {
    backends,
    definition: async (name) => {
      const load = Object.hasOwn(loaders, name) ? loaders[name] : undefined;
      if (!load)
        throw new KuraError("CONFIG_INVALID", `unknown ${names.what} ${JSON.stringify(name)}`, {
          operation: names.operation,
          context: { problems: [{ path: names.path, message: `must be one of ${backends.join(", ")}` }] },
        });
      return load();
    },
  };
}
