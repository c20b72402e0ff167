/**
 * Sessions: one session's live metadata (with the time each key has left, from its TTL) and its
 * files (size, checksum, when the lifecycle job removes them). Sessions are named by their id;
 * the API has no listing of every session, so the page keeps the ids opened in this tab.
 */
import { useState } from "preact/hooks";
import { api, bytes, errorText } from "../api";

interface SessionFile {
  path: string;
  size: number;
  content_type: string;
  sha256: string | null;
  last_modified: string;
  expires_at: string;
}

function left(expiresAt: unknown): string {
  if (typeof expiresAt !== "string") return "no TTL";
  const s = Math.round((Date.parse(expiresAt) - Date.now()) / 1000);
  if (!Number.isFinite(s)) return "no TTL";
  if (s <= 0) return "expired";
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

export function SessionsPage() {
  const [id, setId] = useState("");
  const [opened, setOpened] = useState<string[]>([]);
  const [meta, setMeta] = useState<Record<string, unknown> | undefined>();
  const [files, setFiles] = useState<SessionFile[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [current, setCurrent] = useState<string | undefined>();

  const open = async (sid: string) => {
    const s = sid.trim();
    if (!s) return;
    try {
      const [m, f] = await Promise.all([
        api<Record<string, unknown>>("GET", `/v1/sessions/${encodeURIComponent(s)}/meta`),
        api<{ items: SessionFile[] }>("GET", `/v1/sessions/${encodeURIComponent(s)}/files`),
      ]);
      setMeta(m);
      setFiles(f.items);
      setCurrent(s);
      setError(undefined);
      setOpened((xs) => [s, ...xs.filter((x) => x !== s)].slice(0, 20));
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">Sessions</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void open(id);
        }}
      >
        <label for="sid">Session id</label>
        <input id="sid" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} />
        <button type="submit">Open</button>
      </form>
      {opened.length > 0 && (
        <nav aria-label="Recently opened sessions">
          <ul class="chips">
            {opened.map((s) => (
              <li key={s}>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => void open(s)}
                  aria-pressed={s === current}
                >
                  {s}
                </button>
              </li>
            ))}
          </ul>
        </nav>
      )}
      {error && <p role="alert">{error}</p>}
      {current && meta && (
        <>
          <h2>Metadata of {current}</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">TTL left</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(meta).map(([k, v]) => {
                const entry = v as { value?: unknown; expires_at?: unknown } | null;
                const hasShape = entry !== null && typeof entry === "object" && "value" in entry;
                return (
                  <tr key={k}>
                    <td class="mono">{k}</td>
                    <td class="mono">{JSON.stringify(hasShape ? entry.value : v)}</td>
                    <td>{left(hasShape ? entry.expires_at : undefined)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {Object.keys(meta).length === 0 && <p>No live metadata.</p>}
          <h2>Files</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Path</th>
                <th scope="col">Size</th>
                <th scope="col">SHA-256</th>
                <th scope="col">Removed in</th>
              </tr>
            </thead>
            <tbody>
              {files.map((f) => (
                <tr key={f.path}>
                  <td class="mono">{f.path}</td>
                  <td>{bytes(f.size)}</td>
                  <td class="mono">{f.sha256 ? `${f.sha256.slice(0, 16)}…` : "—"}</td>
                  <td>{left(f.expires_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {files.length === 0 && <p>No files.</p>}
        </>
      )}
    </section>
  );
}
