/** Client routes under `/console/`: the server answers index.html for each (console-page.ts). */
import { useEffect, useState } from "preact/hooks";

export const BASE = "/console";

export function currentRoute(): string {
  const p = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "/";
  return p === "" ? "/" : p;
}

export function navigate(route: string): void {
  history.pushState(null, "", `${BASE}${route}`);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const on = () => setRoute(currentRoute());
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return route;
}

/** An in-app link: a real href (open in a new tab works), navigation without a reload. */
export function linkProps(route: string) {
  return {
    href: `${BASE}${route}`,
    onClick: (e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(route);
    },
  };
}
