// The fleet, live: every satellite the signed-in person may see, a page at a time,
// filtered by team, status and name; status changes arrive over graphql-transport-ws.
import { createClient } from "graphql-ws";
import { StrictMode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { graphql } from "./api.js";
import "./fleet.css";

const PAGE = 100;
// Changes of satellites not on the page (new ones, or on other pages) re-read the page at
// most this often, so a burst of a thousand changes costs one read, not a thousand.
const RELOAD_AFTER_MS = 1000;
const ME = `{ me { email globalRole } teams { id name } }`;
const FLEET = `query ($first: Int, $after: String, $teamId: ID, $status: SatelliteStatus,
                      $search: String) {
  satellites(first: $first, after: $after, teamId: $teamId, status: $status, search: $search) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name satelliteType teamId status online lastHeartbeatAt latestMetrics
                   processCount } } } }`;
const STATUS_CHANGES = `subscription { satelliteStatusChanged {
  satellite { id status online lastHeartbeatAt latestMetrics processCount } } }`;
const STATUSES = ["ACTIVE", "INACTIVE", "MAINTENANCE", "DISABLED"];

function ago(when) {
  if (!when) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(when)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function metric(node, key, digits = 0) {
  const value = node.latestMetrics?.[key];
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function useLiveStatus(onChange) {
  useEffect(() => {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
    const client = createClient({ url, retryAttempts: Infinity, lazy: false });
    const stop = client.subscribe({ query: STATUS_CHANGES }, {
      next: (message) => message.data && onChange(message.data.satelliteStatusChanged.satellite),
      error: () => {},
      complete: () => {},
    });
    return () => { stop(); client.dispose(); };
  }, [onChange]);
}

function Fleet({ teams }) {
  const [filters, setFilters] = useState({ teamId: "", status: "", search: "" });
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState("");
  const teamNames = useMemo(() => Object.fromEntries(teams.map((t) => [t.id, t.name])), [teams]);
  const after = cursors[cursors.length - 1];

  const load = useCallback(async () => {
    try {
      const data = await graphql(FLEET, {
        first: PAGE, after, teamId: filters.teamId || null, status: filters.status || null,
        search: filters.search || null,
      });
      setPage(data.satellites);
      setError("");
    } catch (failure) {
      setError(failure.message);
    }
  }, [after, filters]);

  useEffect(() => { load(); const timer = setInterval(load, 15000); return () => clearInterval(timer); },
    [load]);

  const reload = useRef(null);
  useEffect(() => () => clearTimeout(reload.current), []);
  const reloadSoon = useCallback(() => {
    if (reload.current === null) {
      reload.current = setTimeout(() => { reload.current = null; load(); }, RELOAD_AFTER_MS);
    }
  }, [load]);

  const applyChange = useCallback((changed) => {
    setPage((current) => {
      if (!current) return current;
      if (!current.edges.some((edge) => edge.node.id === changed.id)) {
        reloadSoon(); // not on this page: maybe new, maybe elsewhere
        return current;
      }
      return { ...current, edges: current.edges.map((edge) => edge.node.id === changed.id
        ? { node: { ...edge.node, ...changed } } : edge) };
    });
  }, [reloadSoon]);
  useLiveStatus(applyChange);

  const filter = (name) => (event) => {
    setFilters({ ...filters, [name]: event.target.value });
    setCursors([null]);
  };
  const nodes = page ? page.edges.map((edge) => edge.node) : [];
  const online = nodes.filter((node) => node.online).length;

  return (
    <section aria-labelledby="fleet-title">
      <div className="toolbar">
        <h2 id="fleet-title">Fleet</h2>
        <label>Team{" "}
          <select value={filters.teamId} onChange={filter("teamId")}>
            <option value="">all</option>
            {teams.map((team) => <option key={team.id} value={team.id}>{team.name}</option>)}
          </select>
        </label>
        <label>Status{" "}
          <select value={filters.status} onChange={filter("status")}>
            <option value="">any</option>
            {STATUSES.map((status) => <option key={status} value={status}>{status.toLowerCase()}</option>)}
          </select>
        </label>
        <label>Name{" "}
          <input type="search" value={filters.search} onChange={filter("search")} maxLength={100} />
        </label>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      <p aria-live="polite" className="summary">
        {page ? `${page.totalCount} satellite(s); ${online} of the ${nodes.length} shown online` : "Loading…"}
      </p>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Satellites</caption>
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Team</th><th scope="col">Status</th>
              <th scope="col">Connection</th><th scope="col">Last heartbeat</th>
              <th scope="col">CPU %</th><th scope="col">Memory MB</th><th scope="col">Processes</th></tr>
          </thead>
          <tbody>
            {nodes.map((node) => (
              <tr key={node.id} data-satellite={node.id}>
                <th scope="row">{node.name}</th>
                <td>{node.teamId ? teamNames[node.teamId] || "–" : "global"}</td>
                <td>{node.status.toLowerCase()}</td>
                <td><span className={node.online ? "badge online" : "badge offline"}>
                  {node.online ? "online" : "offline"}</span></td>
                <td>{ago(node.lastHeartbeatAt)}</td>
                <td>{metric(node, "cpu_usage_percent", 1)}</td>
                <td>{metric(node, "memory_usage_mb")}</td>
                <td>{node.processCount}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav aria-label="Pages" className="pager">
        <button type="button" disabled={cursors.length < 2}
          onClick={() => setCursors(cursors.slice(0, -1))}>Previous</button>
        <button type="button" disabled={!page?.pageInfo.hasNextPage}
          onClick={() => setCursors([...cursors, page.pageInfo.endCursor])}>Next</button>
      </nav>
    </section>
  );
}

function App() {
  const [me, setMe] = useState(null);
  const [teams, setTeams] = useState([]);
  const [error, setError] = useState("");
  useEffect(() => {
    graphql(ME).then((data) => { setMe(data.me); setTeams(data.teams); }).catch((failure) => {
      if (failure.code === "UNAUTHENTICATED") location.assign("/login?next=/");
      else setError(failure.message);
    });
  }, []);
  const signOut = async () => { await graphql("mutation { logout }"); location.assign("/login"); };
  return (
    <>
      <header className="top">
        <h1>Groundstation</h1>
        {me && <span>{me.email} ({me.globalRole.toLowerCase().replace("_", " ")})</span>}
        <nav><a href="/graphql">GraphiQL</a>{" "}
          {me && <button type="button" onClick={signOut}>Sign out</button>}</nav>
      </header>
      <main>
        {error && <p role="alert" className="error">{error}</p>}
        {me && <Fleet teams={teams} />}
      </main>
    </>
  );
}

createRoot(document.getElementById("app")).render(<StrictMode><App /></StrictMode>);
