/**
 * The dashboard: `GET /v1/dashboard` for a tenant, `GET /v1/admin/dashboard[?tenant=]` for the
 * admin (with a tenant switcher). Storage by plane and tenant, message sizes with seed 000's
 * 4 KB / 128 KB lines, ingest and query rates, latency percentiles, outbox lag, cache hit ratio,
 * lifecycle runs, the last consistency check and the monthly cost estimate. Refreshed every 10 s.
 */
import { useEffect, useState } from "preact/hooks";
import { api, bytes, type Dashboard, errorText, url } from "../api";
import { BarChart, LineChart, RowChart } from "../charts";
import type { Identity } from "../main";

/** Dollars with enough digits to tell small estimates apart. */
function usd(v: number): string {
  if (v === 0) return "$0";
  if (v >= 1) return `$${v.toFixed(2)}`;
  return `$${v.toPrecision(2)}`;
}

function sizeLabel(lower: number, upper: number | undefined): string {
  const k = (n: number) => (n >= 1024 ? `${n / 1024}K` : `${n}`);
  return upper === undefined ? `≥${k(lower)}` : `<${k(upper)}`;
}

export function DashboardPage({ who }: { who: Identity }) {
  const [data, setData] = useState<Dashboard | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [tenant, setTenant] = useState("");
  const [tenants, setTenants] = useState<string[]>([]);
  const admin = who.role === "admin";

  useEffect(() => {
    let stop = false;
    const load = async () => {
      try {
        const d = await api<Dashboard>(
          "GET",
          admin ? url("/v1/admin/dashboard", { tenant: tenant || undefined }) : "/v1/dashboard",
        );
        if (stop) return;
        setData(d);
        setError(undefined);
        if (admin && !tenant) setTenants(d.storage.tenants.map((t) => t.tenant_id));
      } catch (e) {
        if (!stop) setError(errorText(e));
      }
    };
    void load();
    const timer = setInterval(() => void load(), 10_000);
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, [admin, tenant]);

  const sizes = data?.message_sizes;
  const lineIndex = (b: number) => (sizes ? sizes.bounds.indexOf(b) + 1 : 0);
  return (
    <section aria-labelledby="dash-title" class="dashboard">
      <h1 id="dash-title">
        Dashboard{data?.tenant_id ? ` · ${data.tenant_id}` : admin ? " · all tenants" : ""}
      </h1>
      {admin && (
        <div class="row">
          <label for="tenant-switch">Tenant</label>
          <select
            id="tenant-switch"
            value={tenant}
            onChange={(e) => setTenant((e.target as HTMLSelectElement).value)}
          >
            <option value="">All tenants</option>
            {tenants.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
      )}
      {error && <p role="alert">{error}</p>}
      {!data && !error && <p>Loading…</p>}
      {data && sizes && (
        <div class="grid">
          <div class="card">
            <h2>Storage by plane</h2>
            <BarChart
              testId="chart-planes"
              title="Bytes stored per plane"
              bars={data.storage.planes.map((p) => ({
                label: p.plane,
                value: p.bytes,
                text: `${bytes(p.bytes)}, ${p.bodies} bodies`,
              }))}
              format={bytes}
            />
          </div>
          {admin && !data.tenant_id && (
            <div class="card">
              <h2>Storage by tenant</h2>
              <RowChart
                testId="chart-tenants"
                title="Bytes stored per tenant"
                bars={data.storage.tenants.map((t) => ({
                  label: t.tenant_id,
                  value: t.bytes,
                  text: bytes(t.bytes),
                }))}
              />
            </div>
          )}
          <div class="card">
            <h2>Message sizes</h2>
            <BarChart
              testId="chart-sizes"
              title="Live messages by body size"
              bars={sizes.counts.map((n, i) => ({
                label: sizeLabel(sizes.bounds[i - 1] ?? 0, sizes.bounds[i]),
                value: n,
              }))}
              markers={sizes.alert_lines.map((l) => ({
                index: lineIndex(l.bytes),
                label: l.bytes >= 131_072 ? "128 KB" : "4 KB",
              }))}
            />
            <p class={sizes.share_at_least_4kb > 0.1 ? "warn" : "meta"}>
              {Math.round(sizes.share_at_least_4kb * 1000) / 10} % of messages are 4 KB or more
              {sizes.share_at_least_4kb > 0.1 ? " (above the 10 % line)" : ""}; {sizes.at_least_128kb} at the
              128 KB limit.
            </p>
          </div>
          <div class="card">
            <h2>Ingest and query rates</h2>
            <LineChart
              testId="chart-rates"
              title={`Requests per second (${data.activity.slot_seconds} s slots)`}
              labels={data.activity.rates.map((r) => new Date(r.at).toLocaleTimeString())}
              series={[
                { name: "ingest", values: data.activity.rates.map((r) => r.ingest_per_s) },
                { name: "query", values: data.activity.rates.map((r) => r.query_per_s) },
              ]}
            />
          </div>
          <div class="card">
            <h2>Latency</h2>
            <BarChart
              testId="chart-latency"
              title={`Latency percentiles, ms (${data.activity.latency_ms.requests} requests)`}
              bars={(["p50", "p90", "p99"] as const).map((p) => ({
                label: p,
                value: data.activity.latency_ms[p] ?? 0,
              }))}
              format={(v) => `${Math.round(v * 10) / 10}`}
            />
          </div>
          <div class="card">
            <h2>Monthly cost estimate</h2>
            <RowChart
              testId="chart-cost"
              title={`${data.cost.currency} per month at list prices of ${data.cost.as_of}`}
              bars={data.cost.estimates.map((e) => ({
                label: `${e.provider} ${e.class}`,
                value: e.monthly_usd,
                text: usd(e.monthly_usd),
              }))}
            />
            <p class="meta">{data.cost.note}</p>
          </div>
          {data.outbox && (
            <div class="card">
              <h2>Outbox lag</h2>
              <BarChart
                testId="chart-outbox"
                title="Events not yet delivered, per projector"
                bars={data.outbox.map((o) => ({ label: o.projector, value: o.lag_events }))}
              />
            </div>
          )}
          {data.cache && (
            <div class="card">
              <h2>Cache hit ratio</h2>
              <BarChart
                testId="chart-cache"
                title={`Body cache hit ratio per tier (${data.cache.hits} hits, ${data.cache.misses} misses)`}
                bars={data.cache.tiers.map((t) => ({
                  label: t.tier,
                  value: (t.hit_ratio ?? 0) * 100,
                  text: `${((t.hit_ratio ?? 0) * 100).toFixed(1)} %`,
                }))}
                format={(v) => `${Math.round(v)} %`}
              />
            </div>
          )}
          {admin && (
            <div class="card">
              <h2>Consistency check</h2>
              {data.fsck ? (
                <p class={data.fsck.ok ? "ok" : "warn"} data-testid="fsck">
                  {data.fsck.ok ? "Clean" : "Problems found"} at {new Date(data.fsck.at).toLocaleString()} (
                  {data.fsck.source === "server" ? "run by this server" : "last repair"}):{" "}
                  {Object.entries(data.fsck.problems)
                    .map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`)
                    .join(", ")}
                </p>
              ) : (
                <p class="meta">No check recorded yet (kura fsck, or POST /v1/admin/fsck).</p>
              )}
            </div>
          )}
          {data.lifecycle_runs && (
            <div class="card wide">
              <h2>Lifecycle runs</h2>
              {data.lifecycle_runs.length === 0 ? (
                <p class="meta">No run recorded in the last 30 days.</p>
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">At</th>
                      <th scope="col">By</th>
                      <th scope="col">What it did</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.lifecycle_runs.map((r) => (
                      <tr key={r.at + r.actor}>
                        <td>{new Date(r.at).toLocaleString()}</td>
                        <td>{r.actor}</td>
                        <td>
                          {Object.entries(r.counts)
                            .filter(([, v]) => typeof v === "number" && v > 0)
                            .map(([k, v]) => `${k} ${v}`)
                            .join(", ") || "nothing due"}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          )}
        </div>
      )}
      {data && <p class="meta">Storage figures as of {new Date(data.storage_as_of).toLocaleTimeString()}.</p>}
    </section>
  );
}
