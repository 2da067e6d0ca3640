// What every view shares: who is signed in (and what they may do), reading and
// subscribing with React hooks, times, errors, and showing a secret once.
import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import { graphql, subscribe } from "./api.js";

export const ViewerContext = createContext(null);

// Views re-read what changes with heartbeats (every 30 s) and events this often.
export const REFRESH_MS = 15000;

// An API enum word for people: "HEALTH_CHECK" → "health check".
export const lower = (value) => value.toLowerCase().replaceAll("_", " ");

// The JSON a person typed (`empty` when blank, if given), or an Error that says what
// to write.
export function parseTyped(text, what, example, empty = undefined) {
  if (!text.trim() && empty !== undefined) return empty;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what} is not JSON: write an object such as ${example}.`);
  }
}

// Rows read once and the same rows changed live since (those win), one per id,
// newest first by the time in `field`.
export function newestFirst(loaded, changed, field) {
  const byId = new Map(loaded.map((row) => [row.id, row]));
  for (const row of changed) byId.set(row.id, row);
  return [...byId.values()].sort((a, b) => Date.parse(b[field]) - Date.parse(a[field]));
}

// The signed-in person: `adminOf(teamId)` mirrors the API's rules for hiding what they
// cannot do (the API enforces them either way; docs/graphql.md §2).
export function viewerOf(me, teams) {
  const roles = {};
  for (const team of teams) {
    const mine = team.members.find((member) => member.user.id === me.id);
    roles[team.id] = mine ? mine.role : "TEAM_USER";
  }
  const globalAdmin = me.globalRole === "GLOBAL_ADMIN";
  return {
    me, teams, globalAdmin,
    teamName: (id) => (id ? teams.find((team) => team.id === id)?.name ?? "–" : "global"),
    adminOf: (teamId) => globalAdmin || (teamId != null && roles[teamId] === "TEAM_ADMIN"),
  };
}

export function useViewer() {
  return useContext(ViewerContext);
}

// A query's data, re-read when `variables` change (compared as JSON), on `reload()`, and
// every `every` milliseconds if given; a null query reads nothing (yet).
export function useQuery(query, variables = {}, { every = 0 } = {}) {
  const key = JSON.stringify(variables);
  const [state, setState] = useState({ data: null, error: "" });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    if (query === null) return undefined;
    graphql(query, JSON.parse(key))
      .then((data) => current && setState({ data, error: "" }))
      .catch((failure) => current && setState((old) => ({ data: old.data, error: failure.message })));
    return () => { current = false; };
  }, [query, key, generation]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  useEffect(() => {
    if (!every || query === null) return undefined;
    const timer = setInterval(reload, every);
    return () => clearInterval(timer);
  }, [every, query, reload]);
  return { ...state, reload };
}

// Subscribes while mounted; `onData` may change between renders without resubscribing.
export function useSubscription(query, variables, onData) {
  const handler = useRef(onData);
  handler.current = onData;
  const key = JSON.stringify(variables);
  useEffect(() => subscribe(query, JSON.parse(key), (data) => handler.current(data)), [query, key]);
}

export function ago(when) {
  if (!when) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(when)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function Time({ at }) {
  return at ? <time dateTime={at} title={new Date(at).toLocaleString()}>{ago(at)}</time> : "–";
}

export function ErrorText({ children }) {
  return children ? <p role="alert" className="error">{children}</p> : null;
}

// A button that runs an async action, disabled while it runs, saying what went wrong.
export function Action({ run, children, confirm, className = "", ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const click = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError("");
    try { await run(); } catch (failure) { setError(failure.message); } finally { setBusy(false); }
  };
  return (
    <span className="action">
      <button type="button" className={className} onClick={click} disabled={busy}
        aria-busy={busy} {...rest}>{children}</button>
      {error && <span role="alert" className="error">{error}</span>}
    </span>
  );
}

// A secret that is shown only now (a key, a token): selectable, with a copy button.
export function ShownOnce({ label, value, children }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(value); setCopied(true); } catch { setCopied(false); }
  };
  return (
    <div className="shown-once" role="status">
      <p><strong>{label}</strong> — shown only now; copy it before leaving this page.</p>
      <div className="secret">
        <code aria-label={label}>{value}</code>
        <button type="button" onClick={copy}>{copied ? "Copied" : "Copy"}</button>
      </div>
      {children}
    </div>
  );
}

export function Json({ value }) {
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}
