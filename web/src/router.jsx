// Paths of the single page: links change the address without reloading, and the
// server answers every one of these paths with the same page (app/rest/pages.py).
import { useEffect, useState } from "react";

const listeners = new Set();

export function navigate(path) {
  history.pushState(null, "", path);
  listeners.forEach((listener) => listener(location.pathname));
}

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    listeners.add(setPath);
    addEventListener("popstate", onPop);
    return () => { listeners.delete(setPath); removeEventListener("popstate", onPop); };
  }, []);
  return path;
}

export function Link({ to, children, ...rest }) {
  const follow = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={follow} {...rest}>{children}</a>;
}

// The route a path names: [name, id] (e.g. ["satellite", "3f…"]), or ["fleet"].
export function route(path) {
  const [, first, id] = path.split("/");
  const named = { satellites: "satellite", teams: "team", alerts: "alerts", account: "account" };
  return named[first] ? [named[first], id ? decodeURIComponent(id) : null] : ["fleet", null];
}
