/**
 * Sessions: the active ones (with live metadata; `GET /v1/sessions`, merged across pages by id),
 * and one session's metadata with the time each key has left and its files
 * (`GET /v1/sessions/{session_id}`).
 */
import { useEffect, useState } from "preact/hooks";
import { api, bytes, errorText, url } from "../api";

interface SessionFile {
  path: string;
  size: number;
  content_type: string;
  sha256: string | null;
  last_modified: string;
  expires_at: string;
}

interface MetaEntry {
  key: string;
  value: unknown;
  version: number;
  expires_at: string | null;
}

interface ActiveSession {
  session_id: string;
  keys: number;
  expires_at: string | null;
}

function left(expiresAt: string | null): string {
  if (expiresAt === null) return "no TTL";
  const s = Math.round((Date.parse(expiresAt) - Date.now()) / 1000);
  if (!Number.isFinite(s)) return "no TTL";
  if (s <= 0) return "expired";
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

/** Merges a page into what is known: a session straddling two pages appears on both. */
function merge(into: Map<string, ActiveSession>, items: ActiveSession[]): Map<string, ActiveSession> {
  const out = new Map(into);
  for (const s of items) {
    const before = out.get(s.session_id);
    if (!before) out.set(s.session_id, s);
    else
      out.set(s.session_id, {
        session_id: s.session_id,
        keys: before.keys + s.keys,
        expires_at:
          before.expires_at === null || s.expires_at === null
            ? null
            : ([before.expires_at, s.expires_at].sort().at(-1) ?? null),
      });
  }
  return out;
}

export function SessionsPage() {
  const [id, setId] = useState("");
  const [active, setActive] = useState<Map<string, ActiveSession>>(new Map());
  const [cursor, setCursor] = useState<string | null>(null);
  const [meta, setMeta] = useState<MetaEntry[]>([]);
  const [files, setFiles] = useState<SessionFile[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [current, setCurrent] = useState<string | undefined>();

  const loadActive = async (after?: string) => {
    try {
      const page = await api<{ items: ActiveSession[]; next_cursor: string | null }>(
        "GET",
        url("/v1/sessions", { cursor: after, limit: 1000 }),
      );
      setActive((m) => merge(after ? m : new Map(), page.items));
      setCursor(page.next_cursor);
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => {
    void loadActive();
  }, []);

  const open = async (sid: string) => {
    const s = sid.trim();
    if (!s) return;
    try {
      const d = await api<{ metadata: MetaEntry[]; files: SessionFile[] }>(
        "GET",
        `/v1/sessions/${encodeURIComponent(s)}`,
      );
      setMeta(d.metadata);
      setFiles(d.files);
      setCurrent(s);
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">Sessions</h1>
      <h2>Active sessions</h2>
      {active.size === 0 ? (
        <p>No session has live metadata.</p>
      ) : (
        <table data-testid="active-sessions">
          <thead>
            <tr>
              <th scope="col">Session</th>
              <th scope="col">Metadata keys</th>
              <th scope="col">Expires in</th>
            </tr>
          </thead>
          <tbody>
            {[...active.values()].map((s) => (
              <tr key={s.session_id}>
                <td>
                  <button
                    type="button"
                    class="secondary"
                    aria-pressed={s.session_id === current}
                    onClick={() => void open(s.session_id)}
                  >
                    {s.session_id}
                  </button>
                </td>
                <td>{s.keys}</td>
                <td>{left(s.expires_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" onClick={() => void loadActive(cursor)}>
          More
        </button>
      )}
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
      {error && <p role="alert">{error}</p>}
      {current && (
        <>
          <h2>Metadata of {current}</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">Version</th>
                <th scope="col">TTL left</th>
              </tr>
            </thead>
            <tbody>
              {meta.map((m) => (
                <tr key={m.key}>
                  <td class="mono">{m.key}</td>
                  <td class="mono">{JSON.stringify(m.value)}</td>
                  <td>{m.version}</td>
                  <td>{left(m.expires_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {meta.length === 0 && <p>No live metadata.</p>}
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
