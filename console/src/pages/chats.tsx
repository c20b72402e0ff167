/** Chats: the list, one chat's history (infinite scroll), and a message with its versions. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import {
  api,
  bytes,
  type Chat,
  errorText,
  type Message,
  type MessageRef,
  type MessageVersion,
  type Page,
  url,
} from "../api";
import { linkProps } from "../router";

const PAGE = 30;

/** Pages of a list, loaded one after another as the sentinel scrolls into view. */
function usePaged<T>(load: (cursor: string | undefined) => Promise<Page<T>>, deps: unknown[]) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<string | undefined>();
  const [loading, setLoading] = useState(false);
  const busy = useRef(false);
  const generation = useRef(0);
  const more = useCallback(async () => {
    if (busy.current || cursor === null) return;
    busy.current = true;
    setLoading(true);
    const g = generation.current;
    try {
      const page = await load(cursor);
      if (g !== generation.current) return;
      setItems((xs) => [...xs, ...page.items]);
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(errorText(e));
      setCursor(null);
    } finally {
      busy.current = false;
      setLoading(false);
    }
  }, [cursor, ...deps]);
  useEffect(() => {
    generation.current++;
    busy.current = false;
    setItems([]);
    setError(undefined);
    setCursor(undefined);
  }, deps);
  return { items, more, done: cursor === null, error, loading, started: cursor !== undefined };
}

/** Calls `onVisible` whenever the returned element's sentinel comes into view. */
function useSentinel(onVisible: () => void, active: boolean) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || !active) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) onVisible();
    });
    io.observe(el);
    return () => io.disconnect();
  }, [onVisible, active]);
  return ref;
}

export function ChatsPage() {
  const list = usePaged<Chat>((cursor) => api("GET", url("/v1/chats", { limit: PAGE, cursor })), []);
  const sentinel = useSentinel(list.more, !list.done);
  return (
    <section aria-labelledby="chats-title">
      <h1 id="chats-title">Chats</h1>
      {list.error && <p role="alert">{list.error}</p>}
      <ul class="list" aria-label="Chats">
        {list.items.map((c) => (
          <li key={c.chat_id}>
            <a {...linkProps(`/chats/${encodeURIComponent(c.chat_id)}`)}>{c.chat_id}</a>
            <span class="meta">last message {new Date(c.last_message_at).toLocaleString()}</span>
          </li>
        ))}
      </ul>
      {list.done && list.items.length === 0 && !list.error && <p>No chats yet.</p>}
      <div ref={sentinel} class="sentinel" aria-hidden="true" />
      {list.loading && <p aria-live="polite">Loading…</p>}
    </section>
  );
}

export function ChatPage({ chatId }: { chatId: string }) {
  const list = usePaged<MessageRef>(
    (cursor) =>
      api(
        "GET",
        url(`/v1/chats/${encodeURIComponent(chatId)}/messages`, { limit: PAGE, cursor, order: "desc" }),
      ),
    [chatId],
  );
  const sentinel = useSentinel(list.more, !list.done);
  return (
    <section aria-labelledby="chat-title">
      <p>
        <a {...linkProps("/chats")}>← Chats</a>
      </p>
      <h1 id="chat-title">Chat {chatId}</h1>
      {list.error && <p role="alert">{list.error}</p>}
      <ol class="list messages" aria-label="Messages, newest first">
        {list.items.map((m) => (
          <li key={m.id}>
            <a {...linkProps(`/messages/${encodeURIComponent(m.id)}`)} class="message-link">
              <span class={`role role-${m.role}`}>{m.role}</span> {m.preview || "(empty)"}
            </a>
            <span class="meta">
              {new Date(m.created_at).toLocaleString()} · {bytes(m.size_bytes)}
              {m.version > 1 ? ` · v${m.version}` : ""}
            </span>
          </li>
        ))}
      </ol>
      {list.done && list.items.length === 0 && !list.error && <p>No messages.</p>}
      <div ref={sentinel} class="sentinel" aria-hidden="true" />
      {list.loading && <p aria-live="polite">Loading…</p>}
    </section>
  );
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((p: { type?: string; text?: string; image_url?: { url?: string } }) =>
        p.type === "text" ? (p.text ?? "") : `[image ${p.image_url?.url ?? ""}]`,
      )
      .join("\n");
  return JSON.stringify(content, null, 2);
}

export function MessagePage({ id }: { id: string }) {
  const [message, setMessage] = useState<Message | undefined>();
  const [versions, setVersions] = useState<MessageVersion[]>([]);
  const [deleted, setDeleted] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [status, setStatus] = useState<string | undefined>();

  const load = useCallback(async () => {
    try {
      const m = await api<Message>("GET", `/v1/messages/${encodeURIComponent(id)}`);
      setMessage(m);
      setError(undefined);
      const v = await api<{ items: MessageVersion[] }>(
        "GET",
        `/v1/messages/${encodeURIComponent(id)}/versions`,
      );
      setVersions(v.items);
    } catch (e) {
      setError(errorText(e));
    }
  }, [id]);
  useEffect(() => {
    void load();
  }, [load]);

  const softDelete = async () => {
    try {
      await api("DELETE", `/v1/messages/${encodeURIComponent(id)}`);
      setDeleted(true);
      setStatus("Deleted (soft): it can be undeleted until it is purged.");
    } catch (e) {
      setStatus(errorText(e));
    }
  };
  const undelete = async () => {
    try {
      await api("POST", `/v1/messages/${encodeURIComponent(id)}:undelete`);
      setDeleted(false);
      setStatus("Undeleted.");
      await load();
    } catch (e) {
      setStatus(errorText(e));
    }
  };

  return (
    <section aria-labelledby="message-title">
      {message && (
        <p>
          <a {...linkProps(`/chats/${encodeURIComponent(message.chat_id)}`)}>← Chat {message.chat_id}</a>
        </p>
      )}
      <h1 id="message-title">Message</h1>
      {error && <p role="alert">{error}</p>}
      {message && (
        <>
          <h2 class="visually-hidden">Body</h2>
          <pre class="body" data-testid="message-body">
            {contentText(message.content)}
          </pre>
          <dl class="facts">
            <dt>Id</dt>
            <dd>{message.id}</dd>
            <dt>Role</dt>
            <dd>{message.role}</dd>
            <dt>Storage key</dt>
            <dd class="mono">{message.content_url}</dd>
            <dt>Checksum (SHA-256)</dt>
            <dd class="mono">{message.checksum}</dd>
            <dt>Size</dt>
            <dd>
              {bytes(message.size_bytes)} ({message.size_bytes} bytes)
            </dd>
            <dt>Version</dt>
            <dd>{message.version}</dd>
            <dt>Created</dt>
            <dd>{new Date(message.created_at).toLocaleString()}</dd>
          </dl>
          <div class="actions">
            {deleted ? (
              <button type="button" onClick={undelete}>
                Undelete
              </button>
            ) : (
              <button type="button" class="danger" onClick={softDelete}>
                Delete
              </button>
            )}
          </div>
          {status && <p role="status">{status}</p>}
          <h2>Versions</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Size</th>
                <th scope="col">Checksum</th>
                <th scope="col">Preview</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.version}>
                  <td>{v.version}</td>
                  <td>{bytes(v.size_bytes)}</td>
                  <td class="mono">{v.checksum.slice(0, 16)}…</td>
                  <td>{v.preview}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
