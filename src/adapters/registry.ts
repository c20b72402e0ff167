/**
 * One registry shape for every plane: a plane's adapter definitions by backend name, each loaded
 * on first use (so a deployment loads only the SDKs and addons it configured), and an unknown
 * name refused with `CONFIG_INVALID` at the config path that named it.
 *
 * A plane's `registry.ts` is then only its table: `name: () => import("./x/index.js").then((m)
 * => m.xDefinition)`, or `alias: "name"` for another name of the same backend.
 */
import { KuraError } from "../core/errors.js";

export interface Registry<D> {
  /** Every name the registry answers to, aliases included. */
  readonly backends: readonly string[];
  /** The definition of `name`; `CONFIG_INVALID` for a name the plane does not have. */
  definition(name: string): Promise<D>;
}

/**
 * Loads a definition. A definition's type names its own options (`BlobStoreDefinition<FsOptions>`),
 * which the plane's `D` (`BlobStoreDefinition<unknown>`) does not accept as a parameter type, so
 * a loader is only checked to give an object with every member of `D`.
 */
export type Loader<D> = () => Promise<{ readonly [K in keyof D]: unknown }>;

export function createRegistry<D>(
  names: {
    /** What an unknown name is called in the error: "storage backend", "embedder", … */
    what: string;
    /** The error's operation: `blob.registry`, … */
    operation: string;
    /** Where the config names the backend: `storage.backend`, … */
    path: string;
  },
  /** Each backend name's loader, or the name it is an alias of. */
  table: Readonly<Record<string, Loader<D> | string>>,
): Registry<D> {
  const backends = Object.freeze(Object.keys(table));
  const loaderOf = (name: string): Loader<D> | undefined => {
    const entry = Object.hasOwn(table, name) ? table[name] : undefined;
    return typeof entry === "string" ? loaderOf(entry) : entry;
  };
  return {
    backends,
    definition: async (name) => {
      const load = loaderOf(name);
      if (!load)
        throw new KuraError("CONFIG_INVALID", `unknown ${names.what} ${JSON.stringify(name)}`, {
          operation: names.operation,
          context: { problems: [{ path: names.path, message: `must be one of ${backends.join(", ")}` }] },
        });
      return (await load()) as D;
    },
  };
}
