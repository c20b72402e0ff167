/**
 * Search: a searchbox, the mode (full-text, vector, hybrid) and ranked hits with their
 * highlighted snippets. Typing searches after a short pause; while an input method composes
 * (Japanese, Chinese, Korean) nothing is searched — the half-typed reading is not the query —
 * and the composed text is searched at compositionend.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, errorText, type SearchHit, url } from "../api";
import { linkProps } from "../router";

type Mode = "fulltext" | "vector" | "hybrid";
const MODES: { value: Mode; label: string }[] = [
  { value: "fulltext", label: "Full-text" },
  { value: "vector", label: "Vector" },
  { value: "hybrid", label: "Hybrid" },
];
const PAUSE_MS = 300;

/** The snippet with each [start, end) range marked. */
function Snippet({ text, ranges }: { text: string; ranges: [number, number][] }) {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const parts: preact.ComponentChild[] = [];
  let at = 0;
  for (const [start, end] of sorted) {
    if (start < at || end <= start) continue;
    if (start > at) parts.push(text.slice(at, start));
    parts.push(<mark key={start}>{text.slice(start, end)}</mark>);
    at = end;
  }
  parts.push(text.slice(at));
  return <p class="snippet">{parts}</p>;
}

export function SearchPage() {
  const [text, setText] = useState("");
  const [mode, setMode] = useState<Mode>("fulltext");
  const [hits, setHits] = useState<SearchHit[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [searched, setSearched] = useState<string | undefined>();
  const composing = useRef(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const controller = useRef<AbortController | undefined>(undefined);

  const run = async (q: string, m: Mode) => {
    controller.current?.abort();
    const query = q.trim();
    if (!query) {
      setHits(undefined);
      setSearched(undefined);
      return;
    }
    const c = new AbortController();
    controller.current = c;
    try {
      const r = await api<{ items: SearchHit[] }>(
        "GET",
        url("/v1/search", { q: query, mode: m, limit: 20 }),
        {
          signal: c.signal,
        },
      );
      setHits(r.items);
      setError(undefined);
      setSearched(query);
    } catch (e) {
      if (c.signal.aborted) return;
      setHits([]);
      setError(errorText(e));
      setSearched(query);
    }
  };

  const schedule = (q: string, m: Mode) => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => void run(q, m), PAUSE_MS);
  };

  useEffect(() => () => clearTimeout(timer.current), []);

  return (
    <section aria-labelledby="search-title">
      <h1 id="search-title">Search</h1>
      <form
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          clearTimeout(timer.current);
          void run(text, mode);
        }}
      >
        <label for="q">Search messages</label>
        <input
          id="q"
          type="search"
          autocomplete="off"
          value={text}
          onInput={(e) => {
            const value = (e.target as HTMLInputElement).value;
            setText(value);
            // Mid-composition input is the reading, not the text: wait for compositionend.
            if (composing.current || (e as InputEvent).isComposing) return;
            schedule(value, mode);
          }}
          onCompositionStart={() => {
            composing.current = true;
            clearTimeout(timer.current);
          }}
          onCompositionEnd={(e) => {
            composing.current = false;
            const value = (e.target as HTMLInputElement).value;
            setText(value);
            schedule(value, mode);
          }}
        />
        <fieldset class="modes">
          <legend>Mode</legend>
          {MODES.map((m) => (
            <label key={m.value}>
              <input
                type="radio"
                name="mode"
                value={m.value}
                checked={mode === m.value}
                onChange={() => {
                  setMode(m.value);
                  if (text.trim()) schedule(text, m.value);
                }}
              />
              {m.label}
            </label>
          ))}
        </fieldset>
        <button type="submit">Search</button>
      </form>
      {error && <p role="alert">{error}</p>}
      <div aria-live="polite" data-testid="search-status" data-query={searched ?? ""}>
        {hits && searched !== undefined && (
          <p class="meta">
            {hits.length} result{hits.length === 1 ? "" : "s"} for “{searched}”
          </p>
        )}
      </div>
      <ol class="list hits" aria-label="Results">
        {(hits ?? []).map((h) => {
          const id = h.id ?? h.message_id ?? "";
          return (
            <li key={id}>
              <a {...linkProps(`/messages/${encodeURIComponent(id)}`)}>
                <Snippet text={h.snippet} ranges={h.highlights} />
              </a>
              <span class="meta">
                chat {h.chat_id} · score {h.score.toFixed(3)}
              </span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
