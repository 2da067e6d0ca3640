// The fleet, live: every satellite the signed-in person may see, a page at a time,
// filtered by team, status and name; status changes arrive over graphql-transport-ws.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { graphql } from "./api.js";
import { Sparkline } from "./chart.jsx";
import { Link } from "./router.jsx";
import { IssueToken } from "./tokens.jsx";
import { ErrorText, REFRESH_MS, Time, useSubscription, useViewer } from "./ui.jsx";

const PAGE = 100;
// Changes of satellites not on the page (new ones, or on other pages) re-read the page at
// most this often, so a burst of a thousand changes costs one read, not a thousand.
const RELOAD_AFTER_MS = 1000;
const SPARK_POINTS = 20;
const FLEET = `query ($first: Int, $after: String, $teamId: ID, $status: SatelliteStatus,
                      $search: String) {
  satellites(first: $first, after: $after, teamId: $teamId, status: $status, search: $search) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name satelliteType teamId status online lastHeartbeatAt latestMetrics
                   processCount } } } }`;
export const STATUS_CHANGES = `subscription { satelliteStatusChanged {
  satellite { id status online lastHeartbeatAt latestMetrics processCount } } }`;
export const STATUSES = ["ACTIVE", "INACTIVE", "MAINTENANCE", "DISABLED"];

function metric(node, key, digits = 0) {
  const value = node.latestMetrics?.[key];
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

// The CPU and memory values seen for each satellite since the page opened (one per
// heartbeat), for the sparklines.
function useSamples() {
  const samples = useRef(new Map());
  return useCallback((nodes) => {
    for (const node of nodes) {
      const seen = samples.current.get(node.id) ?? { at: null, cpu: [], memory: [] };
      const metrics = node.latestMetrics;
      if (metrics && node.lastHeartbeatAt && node.lastHeartbeatAt !== seen.at) {
        seen.at = node.lastHeartbeatAt;
        seen.cpu = [...seen.cpu, metrics.cpu_usage_percent ?? null].slice(-SPARK_POINTS);
        seen.memory = [...seen.memory, metrics.memory_usage_mb ?? null].slice(-SPARK_POINTS);
      }
      samples.current.set(node.id, seen);
    }
    return samples.current;
  }, []);
}

export function Fleet() {
  const viewer = useViewer();
  const [filters, setFilters] = useState({ teamId: "", status: "", search: "" });
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState("");
  const record = useSamples();
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

  useEffect(() => { load(); const timer = setInterval(load, REFRESH_MS); return () => clearInterval(timer); },
    [load]);

  const reload = useRef(null);
  useEffect(() => () => clearTimeout(reload.current), []);
  const reloadSoon = useCallback(() => {
    if (reload.current === null) {
      reload.current = setTimeout(() => { reload.current = null; load(); }, RELOAD_AFTER_MS);
    }
  }, [load]);

  const applyChange = useCallback((data) => {
    const changed = data.satelliteStatusChanged.satellite;
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
  useSubscription(STATUS_CHANGES, {}, applyChange);

  const filter = (name) => (event) => {
    setFilters({ ...filters, [name]: event.target.value });
    setCursors([null]);
  };
  const nodes = useMemo(() => (page ? page.edges.map((edge) => edge.node) : []), [page]);
  const samples = useMemo(() => record(nodes), [record, nodes]);
  const online = nodes.filter((node) => node.online).length;
  const canIssue = viewer.globalAdmin || viewer.teams.some((team) => viewer.adminOf(team.id));

  return (
    <section aria-labelledby="fleet-title">
      <div className="toolbar">
        <h2 id="fleet-title">Fleet</h2>
        <label>Team
          <select value={filters.teamId} onChange={filter("teamId")}>
            <option value="">all</option>
            {viewer.teams.map((team) => <option key={team.id} value={team.id}>{team.name}</option>)}
          </select>
        </label>
        <label>Status
          <select value={filters.status} onChange={filter("status")}>
            <option value="">any</option>
            {STATUSES.map((status) => <option key={status} value={status}>{status.toLowerCase()}</option>)}
          </select>
        </label>
        <label>Name
          <input type="search" value={filters.search} onChange={filter("search")} maxLength={100} />
        </label>
      </div>
      {canIssue && <IssueToken />}
      <ErrorText>{error}</ErrorText>
      <p aria-live="polite" className="summary">
        {page ? `${page.totalCount} satellite(s); ${online} of the ${nodes.length} shown online` : "Loading…"}
      </p>
      <div className="table-wrap">
        <table className="striped">
          <caption className="visually-hidden">Satellites</caption>
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Connection</th>
              <th scope="col">Team</th><th scope="col">Last heartbeat</th>
              <th scope="col">CPU %</th><th scope="col">Memory MB</th><th scope="col">Processes</th></tr>
          </thead>
          <tbody>
            {nodes.map((node) => {
              const seen = samples.get(node.id);
              return (
                <tr key={node.id} data-satellite={node.id}>
                  <th scope="row"><Link to={`/satellites/${node.id}`}>{node.name}</Link></th>
                  <td>{node.status.toLowerCase()}</td>
                  <td><span className={node.online ? "badge online" : "badge offline"}>
                    {node.online ? "online" : "offline"}</span></td>
                  <td>{node.teamId
                    ? <Link to={`/teams/${node.teamId}`}>{viewer.teamName(node.teamId)}</Link>
                    : "global"}</td>
                  <td><Time at={node.lastHeartbeatAt} /></td>
                  <td className="num">{metric(node, "cpu_usage_percent", 1)}
                    {seen?.cpu.length > 1 && <Sparkline values={seen.cpu} label={`CPU of ${node.name}`} />}</td>
                  <td className="num">{metric(node, "memory_usage_mb")}
                    {seen?.memory.length > 1 && <Sparkline values={seen.memory} colour="#b45309"
                      label={`Memory of ${node.name}`} />}</td>
                  <td className="num">{node.processCount}</td>
                </tr>
              );
            })}
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
