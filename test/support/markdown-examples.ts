/**
 * The shell examples of a Markdown document, as data: every fenced ```sh / ```bash / ```shell /
 * ```console / ```zsh block, with the `<!-- example: … -->` marker written right before it.
 *
 * Markers (an HTML comment on the last non-blank line before the fence, invisible when rendered):
 * - `<!-- example: skip (why) -->`: the block is not run; the reason is required.
 * - `<!-- example: server NAME=value … -->`: before the block runs, the server is restarted with
 *   these variables added to its environment (same data, same address), as the text tells the
 *   reader to do; it stays so for the rest of the document.
 * - `<!-- example: output -->` before a ```json block right after a runnable block: the JSON
 *   values that block prints, compared by shape (see `shapeDifferences`).
 * A block without a marker runs. A marker that is not one of these, or that stands before no
 * block (or an output marker before anything but such a ```json block), is an error, and so is a
 * fence without a language: nothing is left out silently.
 */

export const SHELL_LANGUAGES = new Set(["sh", "bash", "shell", "console", "zsh", "shell-session"]);

export interface ShellExample {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  language: string;
  /** The commands, one source line per Markdown line (console output and prompts blanked). */
  code: string;
  skip?: string;
  /** Environment the server is restarted with before this block runs. */
  serverEnv?: Record<string, string>;
  /** The documented output: a ```json block marked `<!-- example: output -->`. */
  output?: { line: number; text: string };
}

export interface ParsedExamples {
  examples: ShellExample[];
  problems: string[];
}

type Marker =
  | { kind: "skip"; reason: string }
  | { kind: "server"; env: Record<string, string> }
  | { kind: "output" };

const MARKER = /^\s*<!--\s*example:\s*(.*?)\s*-->\s*$/;

function parseMarker(body: string): Marker | string {
  const skip = /^skip\s*\((.+)\)$/.exec(body);
  if (skip) return { kind: "skip", reason: (skip[1] as string).trim() };
  if (/^skip\b/.test(body)) return "a skip needs its reason in parentheses: `example: skip (why)`";
  if (body === "output") return { kind: "output" };
  const server = /^server\s+(.+)$/.exec(body);
  if (server) {
    const env: Record<string, string> = {};
    for (const pair of (server[1] as string).split(/\s+/)) {
      const m = /^([A-Z_][A-Z0-9_]*)=(\S*)$/.exec(pair);
      if (!m) return `\`example: server\` takes NAME=value pairs, not ${JSON.stringify(pair)}`;
      env[m[1] as string] = m[2] as string;
    }
    return { kind: "server", env };
  }
  return `unknown marker \`example: ${body}\` (skip (why), server NAME=value …, output)`;
}

/** Console blocks: `$ ` lines (and their `\` continuations) are commands, the rest is output. */
function consoleCommands(lines: string[]): string[] {
  let continued = false;
  return lines.map((l) => {
    if (continued || l.startsWith("$ ")) {
      const command = continued ? l : l.slice(2);
      continued = command.endsWith("\\");
      return command;
    }
    return "";
  });
}

export function parseShellExamples(file: string, markdown: string): ParsedExamples {
  const lines = markdown.split("\n");
  const examples: ShellExample[] = [];
  const problems: string[] = [];
  let pending: { marker: Marker; line: number } | undefined;
  let previousRunnable: ShellExample | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i] as string;
    const marker = MARKER.exec(text);
    if (marker) {
      if (pending) problems.push(`${file}:${pending.line}: marker followed by another marker, not a block`);
      const parsed = parseMarker(marker[1] as string);
      if (typeof parsed === "string") {
        problems.push(`${file}:${i + 1}: ${parsed}`);
        pending = undefined;
      } else pending = { marker: parsed, line: i + 1 };
      continue;
    }
    const fence = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(text);
    if (!fence) {
      if (text.trim() !== "") {
        if (pending) problems.push(`${file}:${pending.line}: marker not right before a fenced block`);
        pending = undefined;
        previousRunnable = undefined;
      }
      continue;
    }
    const [, indent, ticks, language] = fence as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    const close = new RegExp(`^\\s*${ticks[0] === "`" ? "`" : "~"}{${ticks.length},}\\s*$`);
    while (j < lines.length && !close.test(lines[j] as string)) {
      body.push(
        (lines[j] as string).startsWith(indent)
          ? (lines[j] as string).slice(indent.length)
          : (lines[j] as string),
      );
      j++;
    }
    if (j >= lines.length) problems.push(`${file}:${i + 1}: the fence is never closed`);
    const lang = language.toLowerCase();
    const marked = pending;
    pending = undefined;
    if (lang === "") {
      problems.push(
        `${file}:${i + 1}: a fenced block without a language (label it, e.g. \`\`\`sh or \`\`\`text)`,
      );
    } else if (SHELL_LANGUAGES.has(lang)) {
      if (marked?.marker.kind === "output") {
        problems.push(`${file}:${marked.line}: an output marker belongs before a \`\`\`json block`);
      }
      const example: ShellExample = {
        file,
        line: i + 1,
        language: lang,
        code: `${(lang === "console" || lang === "shell-session" ? consoleCommands(body) : body).join("\n")}\n`,
        ...(marked?.marker.kind === "skip" ? { skip: marked.marker.reason } : {}),
        ...(marked?.marker.kind === "server" ? { serverEnv: marked.marker.env } : {}),
      };
      examples.push(example);
      previousRunnable = example.skip === undefined ? example : undefined;
      i = j;
      continue;
    } else if (marked?.marker.kind === "output") {
      if (lang !== "json") {
        problems.push(
          `${file}:${marked.line}: an output marker belongs before a \`\`\`json block, not \`\`\`${lang}`,
        );
      } else if (!previousRunnable) {
        problems.push(`${file}:${marked.line}: an output block must follow a runnable shell block`);
      } else if (previousRunnable.output) {
        problems.push(
          `${file}:${marked.line}: the block at line ${previousRunnable.line} already has an output`,
        );
      } else {
        previousRunnable.output = { line: i + 1, text: body.join("\n") };
      }
    } else if (marked) {
      problems.push(
        `${file}:${marked.line}: \`example: ${marked.marker.kind}\` before a \`\`\`${lang} block`,
      );
    }
    previousRunnable = undefined;
    i = j;
  }
  if (pending) problems.push(`${file}:${pending.line}: marker at the end of the document`);
  return { examples, problems };
}

/**
 * Splits text holding JSON values one after another (what a block of `curl -s` calls prints:
 * envelopes with or without newlines between them) into those values; throws on anything else.
 */
export function splitJsonValues(text: string): unknown[] {
  const values: unknown[] = [];
  let i = 0;
  const n = text.length;
  while (true) {
    while (i < n && /\s/.test(text[i] as string)) i++;
    if (i >= n) return values;
    const start = i;
    const open = text[i];
    if (open !== "{" && open !== "[") {
      throw new Error(`not a JSON object or array at offset ${i}: ${JSON.stringify(text.slice(i, i + 80))}`);
    }
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const c = text[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      }
    }
    values.push(JSON.parse(text.slice(start, i)));
  }
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/**
 * Where `actual` differs in shape from the documented value: the same JSON type everywhere, the
 * same keys in every object, the same length in every array. Values themselves (ids, times,
 * sizes) are not compared.
 */
export function shapeDifferences(documented: unknown, actual: unknown, path = "$"): string[] {
  const t = jsonType(documented);
  const u = jsonType(actual);
  if (t !== u) {
    const value = u === "null" || u === "undefined" ? "" : ` ${JSON.stringify(actual).slice(0, 80)}`;
    return [`${path}: documented ${t}, got ${u}${value}`];
  }
  const out: string[] = [];
  if (t === "array") {
    const d = documented as unknown[];
    const a = actual as unknown[];
    if (d.length !== a.length) out.push(`${path}: documented ${d.length} items, got ${a.length}`);
    for (let k = 0; k < Math.min(d.length, a.length); k++)
      out.push(...shapeDifferences(d[k], a[k], `${path}[${k}]`));
  } else if (t === "object") {
    const d = documented as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const key of Object.keys(d)) {
      if (!(key in a)) out.push(`${path}.${key}: documented, missing from the answer`);
      else out.push(...shapeDifferences(d[key], a[key], `${path}.${key}`));
    }
    for (const key of Object.keys(a)) {
      if (!(key in d)) out.push(`${path}.${key}: in the answer, not documented`);
    }
  }
  return out;
}
