/** KV browser: a namespace's entries by key prefix, a page at a time, with versions and expiry. */
import { useState } from "preact/hooks";
import { api, errorText, type Page, url } from "../api";

interface KvEntry {
  key: string;
  value: unknown;
  version: number;
  expires_at: string | null;
}

export function KvPage() {
  const [namespace, setNamespace] = useState("");
  const [prefix, setPrefix] = useState("");
  const [items, setItems] = useState<KvEntry[] | undefined>();
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | undefined>();

  const load = async (after?: string) => {
    if (!namespace.trim()) return;
    try {
      const page = await api<Page<KvEntry>>(
        "GET",
        url(`/v1/kv/${encodeURIComponent(namespace.trim())}`, { prefix, cursor: after, limit: 100 }),
      );
      setItems((xs) => (after ? [...(xs ?? []), ...page.items] : page.items));
      setCursor(page.next_cursor);
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section aria-labelledby="kv-title">
      <h1 id="kv-title">KV</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <label for="ns">Namespace</label>
        <input
          id="ns"
          required
          value={namespace}
          onInput={(e) => setNamespace((e.target as HTMLInputElement).value)}
        />
        <label for="kv-prefix">Key prefix</label>
        <input
          id="kv-prefix"
          value={prefix}
          onInput={(e) => setPrefix((e.target as HTMLInputElement).value)}
        />
        <button type="submit">List</button>
      </form>
      {error && <p role="alert">{error}</p>}
      {items && (
        <table>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
              <th scope="col">Version</th>
              <th scope="col">Expires</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.key}>
                <td class="mono">{e.key}</td>
                <td class="mono">
                  <details>
                    <summary>{JSON.stringify(e.value).slice(0, 60)}</summary>
                    <pre>{JSON.stringify(e.value, null, 2)}</pre>
                  </details>
                </td>
                <td>{e.version}</td>
                <td>{e.expires_at ? new Date(e.expires_at).toLocaleString() : "never"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {items?.length === 0 && <p>No entries.</p>}
      {cursor && (
        <button type="button" onClick={() => void load(cursor)}>
          More
        </button>
      )}
    </section>
  );
}
