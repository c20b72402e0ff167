/**
 * `/docs`: a self-contained page (no CDN, works offline) that renders `/openapi.json` —
 * routes by tag, parameters, bodies and responses, with not-yet-built routes marked.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kura HTTP API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 1rem 2rem; color: #222; }
  h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ddd; margin-top: 2rem; text-transform: capitalize; }
  details { border: 1px solid #e3e3e3; border-radius: 6px; margin: .4rem 0; padding: .3rem .6rem; }
  summary { cursor: pointer; } code, pre { font: 12px/1.4 ui-monospace, monospace; }
  pre { background: #f6f6f6; padding: .5rem; overflow: auto; border-radius: 4px; }
  .m { display: inline-block; min-width: 4.5rem; font-weight: 600; }
  .GET { color: #1565c0 } .POST { color: #2e7d32 } .PUT { color: #ef6c00 } .PATCH { color: #6a1b9a }
  .DELETE { color: #c62828 } .HEAD { color: #555 }
  .ni { background: #fff3e0; color: #b45309; border-radius: 3px; padding: 0 .4rem; font-size: 12px; margin-left: .5rem; }
  .muted { color: #666; }
</style>
</head>
<body>
<h1>Kura HTTP API</h1>
<p class="muted" id="intro">Loading <a href="/openapi.json">/openapi.json</a>…</p>
<div id="routes"></div>
<script>
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  document.getElementById("intro").innerHTML = esc(doc.info.description) +
    ' — <a href="/openapi.json">openapi.json</a>. Auth: <code>Authorization: Bearer &lt;jwt&gt;</code> (<code>kura token --tenant T</code>).';
  const byTag = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method: method.toUpperCase(), op });
    }
  }
  const out = [];
  for (const [tag, routes] of byTag) {
    out.push("<h2>" + esc(tag) + "</h2>");
    for (const { path, method, op } of routes) {
      const params = (op.parameters || []).map((p) => "<li><code>" + esc(p.name) + "</code> (" + esc(p.in) +
        (p.required ? ", required" : "") + ") " + esc(p.description || JSON.stringify(p.schema)) + "</li>").join("");
      const body = op.requestBody ? "<p><b>Body</b> " + esc(Object.keys(op.requestBody.content).join(", ")) + "</p><pre>" +
        esc(JSON.stringify(Object.values(op.requestBody.content)[0].schema, null, 2)) + "</pre>" : "";
      const responses = Object.entries(op.responses).map(([s, r]) => "<li><code>" + esc(s) + "</code> " + esc(r.description) + "</li>").join("");
      out.push("<details><summary><span class='m " + method + "'>" + method + "</span><code>" + esc(path) + "</code> — " +
        esc(op.summary) + (op["x-kura-not-implemented"] ? "<span class='ni'>501 not implemented yet</span>" : "") +
        (op.security && op.security.length === 0 ? " <span class='muted'>(no token)</span>" : "") + "</summary>" +
        (op.description ? "<p>" + esc(op.description) + "</p>" : "") +
        (params ? "<p><b>Parameters</b></p><ul>" + params + "</ul>" : "") + body +
        "<p><b>Responses</b></p><ul>" + responses + "</ul></details>");
    }
  }
  document.getElementById("routes").innerHTML = out.join("");
}).catch((e) => { document.getElementById("intro").textContent = "Could not load /openapi.json: " + e; });
</script>
</body>
</html>
`;
