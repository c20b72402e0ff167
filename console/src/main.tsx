/**
 * The Kura console: sign in with a token (a JWT or an API key), then browse one tenant's
 * chats, search, objects, sessions and KV, and see the dashboard. An admin token gets a tenant
 * switcher on the dashboard (the data pages act for a tenant, which needs the tenant's token).
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, errorText, setToken } from "./api";
import { ChatPage, ChatsPage, MessagePage } from "./pages/chats";
import { DashboardPage } from "./pages/dashboard";
import { KvPage } from "./pages/kv";
import { ObjectsPage } from "./pages/objects";
import { SearchPage } from "./pages/search";
import { SessionsPage } from "./pages/sessions";
import { linkProps, navigate, useRoute } from "./router";
import "./style.css";

export interface Identity {
  role: "tenant" | "admin";
  tenantId?: string;
}

const STORAGE_KEY = "kura-console-token";

/** Who a token is: a tenant's (GET /v1/usage answers) or the admin (ADMIN_REQUIRED there). */
async function identify(): Promise<Identity> {
  try {
    const usage = await api<{ tenant_id: string }>("GET", "/v1/usage");
    return { role: "tenant", tenantId: usage.tenant_id };
  } catch (e) {
    if (e instanceof ApiError && e.code === "ADMIN_REQUIRED") return { role: "admin" };
    throw e;
  }
}

function SignIn({ onSignedIn }: { onSignedIn: (token: string, who: Identity) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = value.trim();
    if (!token) return;
    setBusy(true);
    setError(undefined);
    setToken(token);
    try {
      onSignedIn(token, await identify());
    } catch (err) {
      setToken(undefined);
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Kura console</h1>
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)}
          aria-describedby="token-help"
        />
        <p id="token-help" class="help">
          A JWT (<code>kura token --tenant T</code>, or <code>--admin</code>) or an API key.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

const NAV: { route: string; label: string; tenantOnly: boolean }[] = [
  { route: "/chats", label: "Chats", tenantOnly: true },
  { route: "/search", label: "Search", tenantOnly: true },
  { route: "/objects", label: "Objects", tenantOnly: true },
  { route: "/sessions", label: "Sessions", tenantOnly: true },
  { route: "/kv", label: "KV", tenantOnly: true },
  { route: "/dashboard", label: "Dashboard", tenantOnly: false },
];

function Page({ route, who }: { route: string; who: Identity }) {
  const parts = route.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (first === "dashboard") return <DashboardPage who={who} />;
  if (who.role === "admin") {
    return (
      <section>
        <h2>Tenant data</h2>
        <p>
          An admin token acts for no tenant. Sign in with a tenant's token or API key to browse its data; the{" "}
          <a {...linkProps("/dashboard")}>dashboard</a> shows every tenant.
        </p>
      </section>
    );
  }
  if (first === "chats" && second) return <ChatPage chatId={second} />;
  if (first === "messages" && second) return <MessagePage id={second} />;
  if (first === "search") return <SearchPage />;
  if (first === "objects") return <ObjectsPage />;
  if (first === "sessions") return <SessionsPage />;
  if (first === "kv") return <KvPage />;
  return <ChatsPage />;
}

function App() {
  const route = useRoute();
  const [who, setWho] = useState<Identity | undefined>();
  const [checking, setChecking] = useState(true);

  // A reload keeps the session of this tab (sessionStorage: gone when the tab closes).
  useEffect(() => {
    const saved = sessionStorage.getItem(STORAGE_KEY);
    if (!saved) {
      setChecking(false);
      return;
    }
    setToken(saved);
    identify()
      .then(setWho, () => {
        sessionStorage.removeItem(STORAGE_KEY);
        setToken(undefined);
      })
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    const active = NAV.find((n) => route.startsWith(n.route))?.label ?? "Chats";
    document.title = who ? `${active} · Kura console` : "Sign in · Kura console";
  }, [route, who]);

  if (checking) return <p class="loading">Loading…</p>;
  if (!who)
    return (
      <SignIn
        onSignedIn={(token, identity) => {
          sessionStorage.setItem(STORAGE_KEY, token);
          setWho(identity);
          if (identity.role === "admin" && !route.startsWith("/dashboard")) navigate("/dashboard");
        }}
      />
    );
  const signOut = () => {
    sessionStorage.removeItem(STORAGE_KEY);
    setToken(undefined);
    setWho(undefined);
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Kura</span>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => who.role === "tenant" || !n.tenantOnly).map((n) => (
              <li key={n.route}>
                <a {...linkProps(n.route)} aria-current={route.startsWith(n.route) ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">{who.role === "admin" ? "admin" : who.tenantId}</span>
        <button type="button" class="secondary" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page key={route} route={route} who={who} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
