/**
 * Objects: browse by prefix, upload by drag and drop (or the file picker) with progress, download,
 * and a presigned link. Uploads are resumable through tus when the server offers `/v1/uploads`
 * (it answers `OPTIONS` with `Tus-Version`); otherwise one `PUT /v1/objects/{key}`.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { Upload } from "tus-js-client";
import {
  api,
  authHeaders,
  bytes,
  download,
  errorText,
  keyPath,
  type ObjectInfo,
  type Page,
  url,
} from "../api";

let tusOffered: Promise<boolean> | undefined;

/** Whether this server takes tus uploads (asked once per page load). */
function offersTus(): Promise<boolean> {
  tusOffered ??= fetch("/v1/uploads", { method: "OPTIONS", headers: { "tus-resumable": "1.0.0" } })
    .then((r) => r.ok && (r.headers.get("tus-version") ?? "").includes("1.0.0"))
    .catch(() => false);
  return tusOffered;
}

function uploadTus(file: File, key: string, onProgress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(file, {
      endpoint: `${location.origin}/v1/uploads`,
      headers: authHeaders(),
      metadata: { key, filetype: file.type || "application/octet-stream" },
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000],
      // Resume an upload of the same file interrupted earlier (its URL kept in localStorage).
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent) => onProgress(sent),
      onError: reject,
      onSuccess: () => resolve(),
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        const last = previous[0];
        if (last) upload.resumeFromPreviousUpload(last);
        upload.start();
      })
      .catch(reject);
  });
}

function uploadPut(file: File, key: string, onProgress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/v1/objects/${keyPath(key)}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else {
        let message = `${xhr.status}`;
        try {
          const body = JSON.parse(xhr.responseText) as { error?: string; error_code?: string };
          message = `${body.error_code}: ${body.error}`;
        } catch {}
        reject(new Error(message));
      }
    };
    xhr.onerror = () => reject(new Error("the upload failed (network)"));
    xhr.send(file);
  });
}

interface Transfer {
  name: string;
  key: string;
  size: number;
  sent: number;
  state: "uploading" | "done" | "failed";
  via: "tus" | "PUT";
  error?: string;
}

export function ObjectsPage() {
  const [prefix, setPrefix] = useState("");
  const [applied, setApplied] = useState("");
  const [items, setItems] = useState<ObjectInfo[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | undefined>();
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const [dragging, setDragging] = useState(false);
  const [links, setLinks] = useState<Record<string, string>>({});
  const input = useRef<HTMLInputElement>(null);

  const list = async (p: string, after?: string) => {
    try {
      const page = await api<Page<ObjectInfo>>(
        "GET",
        url("/v1/objects", { prefix: p, cursor: after, limit: 100 }),
      );
      setItems((xs) => (after ? [...xs, ...page.items] : page.items));
      setCursor(page.next_cursor);
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => {
    void list(applied);
  }, [applied]);

  const uploadFiles = async (files: FileList | File[]) => {
    const tus = await offersTus();
    for (const file of Array.from(files)) {
      const key = `${applied}${file.name}`;
      const t: Transfer = {
        name: file.name,
        key,
        size: file.size,
        sent: 0,
        state: "uploading",
        via: tus ? "tus" : "PUT",
      };
      const update = (patch: Partial<Transfer>) =>
        setTransfers((xs) => xs.map((x) => (x.key === key ? { ...x, ...patch } : x)));
      setTransfers((xs) => [...xs.filter((x) => x.key !== key), t]);
      try {
        await (tus ? uploadTus : uploadPut)(file, key, (sent) => update({ sent }));
        update({ sent: file.size, state: "done" });
      } catch (e) {
        update({ state: "failed", error: errorText(e) });
      }
    }
    await list(applied);
  };

  const save = async (o: ObjectInfo) => {
    try {
      const blob = await download(`/v1/objects/${keyPath(o.key)}`);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = o.key.split("/").at(-1) ?? "download";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const presign = async (o: ObjectInfo) => {
    try {
      const r = await api<{ url: string; expires_at: string }>("POST", "/v1/objects:presign", {
        json: { key: o.key, method: "GET", expires_in: 3600 },
      });
      setLinks((l) => ({ ...l, [o.key]: r.url }));
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section aria-labelledby="objects-title">
      <h1 id="objects-title">Objects</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(prefix);
        }}
      >
        <label for="prefix">Prefix</label>
        <input id="prefix" value={prefix} onInput={(e) => setPrefix((e.target as HTMLInputElement).value)} />
        <button type="submit">List</button>
      </form>
      {/* biome-ignore lint/a11y/noStaticElementInteractions: the drop zone also has a keyboard-usable button */}
      <div
        class={`dropzone${dragging ? " over" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          if (e.dataTransfer?.files.length) void uploadFiles(e.dataTransfer.files);
        }}
      >
        <p>Drop files here to upload them under “{applied || "(no prefix)"}”, or</p>
        <input
          id="files"
          ref={input}
          class="visually-hidden"
          type="file"
          multiple
          onChange={(e) => {
            const files = (e.target as HTMLInputElement).files;
            if (files?.length) void uploadFiles(files);
            if (input.current) input.current.value = "";
          }}
        />
        <label class="button" for="files">
          Choose files
        </label>
      </div>
      {transfers.length > 0 && (
        <ul class="transfers" aria-label="Uploads">
          {transfers.map((t) => (
            <li key={t.key}>
              <label>
                {t.name} ({t.via}){" "}
                <progress max={Math.max(1, t.size)} value={t.sent} aria-label={`Upload of ${t.name}`} />
              </label>{" "}
              <span role="status">
                {t.state === "done"
                  ? "uploaded"
                  : t.state === "failed"
                    ? `failed: ${t.error}`
                    : `${bytes(t.sent)}`}
              </span>
            </li>
          ))}
        </ul>
      )}
      {error && <p role="alert">{error}</p>}
      <table class="objects">
        <caption class="visually-hidden">Objects under the prefix</caption>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Size</th>
            <th scope="col">Type</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {items.map((o) => (
            <tr key={o.key}>
              <td class="mono">{o.key}</td>
              <td>{bytes(o.size)}</td>
              <td>{o.content_type}</td>
              <td class="actions">
                <button type="button" onClick={() => void save(o)} aria-label={`Download ${o.key}`}>
                  Download
                </button>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => void presign(o)}
                  aria-label={`Link to ${o.key}`}
                >
                  Presigned link
                </button>
                {links[o.key] && (
                  <a class="presigned" href={links[o.key]} target="_blank" rel="noreferrer">
                    link (1 h)
                  </a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {items.length === 0 && !error && <p>No objects under this prefix.</p>}
      {cursor && (
        <button type="button" onClick={() => void list(applied, cursor)}>
          More
        </button>
      )}
    </section>
  );
}
