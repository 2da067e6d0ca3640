// One satellite: what it runs, its command queue and events (live), its metrics over an
// hour, a day or a week, client sessions, the configuration it applies, and the actions
// the signed-in person may take.
import { useCallback, useEffect, useMemo, useState } from "react";
import { graphql } from "./api.js";
import { Chart } from "./chart.jsx";
import { Link } from "./router.jsx";
import { STATUS_CHANGES } from "./fleet.jsx";
import {
  Action, ErrorText, Json, REFRESH_MS, ShownOnce, Time, lower, newestFirst, parseTyped, useQuery,
  useSubscription, useViewer,
} from "./ui.jsx";

const SATELLITE = `query ($id: ID!) { satellite(id: $id) {
  id name satelliteType teamId status online reportedStatus lastHeartbeatAt version
  latestMetrics labels processCount
  processes { id processId serverName installationId status healthStatus errorMessage osPid startedAt }
  configState { refreshedAt configHash serverCount teamsCount fetchDurationMs
                lastError { at type message statusCode } }
  clientSessions(first: 20) { totalCount edges { node { id sessionId clientName clientType transport
    connectedAt lastActivityAt open toolExecutionCount user { email } } } }
} }`;
const COMMAND_FIELDS = `id commandType priority status errorMessage attempts late createdAt updatedAt payload`;
const COMMANDS = `query ($id: ID!) { commands(satelliteId: $id, first: 25) {
  edges { node { ${COMMAND_FIELDS} } } } }`;
const COMMAND_UPDATES = `subscription ($id: ID) { commandUpdated(satelliteId: $id) { ${COMMAND_FIELDS} } }`;
const EVENTS = `query ($id: ID!) { satellite(id: $id) { events(first: 25) {
  edges { node { id type timestamp installationId data } } } } }`;
const EVENT_UPDATES = `subscription ($id: ID) { satelliteEvents(satelliteId: $id) {
  id type timestamp installationId data } }`;
// The installations of some teams, in one request (an alias per team).
function installationsOf(teamIds) {
  if (teamIds.length === 0) return null;
  const variables = teamIds.map((_, index) => `$t${index}: ID!`).join(", ");
  const fields = teamIds.map((_, index) => `t${index}: installations(teamId: $t${index}) {
    id name status enabled teamId configPreview }`).join("\n");
  return `query (${variables}) { ${fields} }`;
}
const HISTORY = `query ($id: ID!, $from: DateTime!, $to: DateTime!, $resolution: MetricsResolution!) {
  satellite(id: $id) { metricsHistory(from: $from, to: $to, resolution: $resolution) {
    start cpuAvg cpuMax memoryAvgMb memoryMaxMb processMax } } }`;
const ENQUEUE = `mutation ($id: ID!, $type: CommandType!, $priority: CommandPriority, $payload: JSON) {
  enqueueCommand(satelliteId: $id, commandType: $type, priority: $priority, payload: $payload) { id } }`;
const CANCEL = `mutation ($id: ID!) { cancelCommand(id: $id) { id status } }`;
const SET_STATUS = `mutation ($id: ID!, $status: SatelliteStatus!) {
  updateSatellite(id: $id, status: $status) { id status } }`;
const ROTATE = `mutation ($id: ID!) { rotateSatelliteKey(id: $id) { apiKey } }`;

const RANGES = { hour: [3600, "MINUTE"], day: [86400, "MINUTE"], week: [604800, "HOUR"] };
const COMMAND_TYPES = ["HEALTH_CHECK", "RESTART", "SPAWN", "KILL", "CONFIGURE"];
const PRIORITIES = ["IMMEDIATE", "HIGH", "NORMAL", "LOW"];
const OPEN_COMMANDS = ["PENDING", "ACKNOWLEDGED", "EXECUTING"];
const KEEP = 50;

function Summary({ satellite, viewer }) {
  const metrics = satellite.latestMetrics || {};
  const facts = [
    ["Status", lower(satellite.status)],
    ["Connection", <span key="c" className={satellite.online ? "badge online" : "badge offline"}>
      {satellite.online ? "online" : "offline"}</span>],
    ["Type", lower(satellite.satelliteType)],
    ["Team", satellite.teamId
      ? <Link key="t" to={`/teams/${satellite.teamId}`}>{viewer.teamName(satellite.teamId)}</Link>
      : "every team (global)"],
    ["Last heartbeat", <Time key="h" at={satellite.lastHeartbeatAt} />],
    ["Version", satellite.version || "–"],
    ["CPU", metrics.cpu_usage_percent != null ? `${metrics.cpu_usage_percent.toFixed(1)} %` : "–"],
    ["Memory", metrics.memory_usage_mb != null ? `${Math.round(metrics.memory_usage_mb)} MB` : "–"],
    ["Processes", satellite.processCount],
  ];
  return (
    <dl className="facts">
      {facts.map(([term, value]) => <div key={term}><dt>{term}</dt><dd>{value}</dd></div>)}
    </dl>
  );
}

function Manage({ satellite, onChanged }) {
  const [key, setKey] = useState(null);
  const setStatus = (status) => async () => {
    await graphql(SET_STATUS, { id: satellite.id, status });
    onChanged();
  };
  const disabled = satellite.status === "DISABLED";
  return (
    <section aria-labelledby="manage-title" className="panel">
      <h3 id="manage-title">Manage</h3>
      <div className="buttons">
        {disabled || satellite.status === "MAINTENANCE"
          ? <Action run={setStatus("ACTIVE")}>Enable</Action>
          : <>
            <Action run={setStatus("MAINTENANCE")}>Maintenance</Action>
            <Action run={setStatus("DISABLED")} className="danger"
              confirm={`Disable ${satellite.name}? Its key is refused at once.`}>Disable</Action>
          </>}
        <Action run={async () => setKey((await graphql(ROTATE, { id: satellite.id })).rotateSatelliteKey.apiKey)}
          confirm={`Rotate the key of ${satellite.name}? The old key stops working at once.`}>
          Rotate key</Action>
      </div>
      {key && <ShownOnce label="New API key" value={key} />}
    </section>
  );
}

// `needsInstallation`: a team's administrator commanding a global satellite may do so
// only for an installation of their team (docs/graphql.md §2).
function SendCommand({ satellite, installations, needsInstallation }) {
  const [form, setForm] = useState({ type: "HEALTH_CHECK", priority: "NORMAL",
    installationId: needsInstallation ? installations[0]?.id ?? "" : "", payload: "" });
  const [error, setError] = useState("");
  const [sent, setSent] = useState("");
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    let payload = {};
    try {
      payload = parseTyped(form.payload, "The payload", '{"reason": "manual"}', {});
    } catch (failure) {
      setError(failure.message);
      return;
    }
    if (form.installationId) payload = { ...payload, installation_id: form.installationId };
    setError("");
    try {
      const data = await graphql(ENQUEUE, { id: satellite.id, type: form.type,
        priority: form.priority, payload });
      setSent(`Queued ${lower(form.type)} (${data.enqueueCommand.id.slice(0, 8)})`);
    } catch (failure) {
      setError(failure.message);
    }
  };
  return (
    <form onSubmit={submit} className="inline-form" aria-label="Send a command">
      <label>Command
        <select value={form.type} onChange={set("type")}>
          {COMMAND_TYPES.map((type) => <option key={type} value={type}>{lower(type)}</option>)}
        </select>
      </label>
      <label>Priority
        <select value={form.priority} onChange={set("priority")}>
          {PRIORITIES.map((priority) => <option key={priority} value={priority}>{lower(priority)}</option>)}
        </select>
      </label>
      {installations.length > 0 && (
        <label>Installation
          <select value={form.installationId} onChange={set("installationId")}
            required={needsInstallation}>
            {!needsInstallation && <option value="">none</option>}
            {installations.map((item) => <option key={item.id} value={item.id}>{item.name}</option>)}
          </select>
        </label>
      )}
      <label>Payload (JSON, optional)
        <input value={form.payload} onChange={set("payload")} maxLength={4096} placeholder="{}" />
      </label>
      <button type="submit">Send command</button>
      <span role="status">{sent}</span>
      <ErrorText>{error}</ErrorText>
    </form>
  );
}

function Commands({ satellite, canCommand, installations, needsInstallation }) {
  const { data, error } = useQuery(COMMANDS, { id: satellite.id });
  const [live, setLive] = useState([]);
  useSubscription(COMMAND_UPDATES, { id: satellite.id }, (update) => {
    setLive((seen) => [update.commandUpdated, ...seen.filter((c) => c.id !== update.commandUpdated.id)]
      .slice(0, KEEP));
  });
  const commands = useMemo(() => newestFirst(
    (data?.commands.edges ?? []).map((edge) => edge.node), live, "createdAt").slice(0, KEEP),
  [data, live]);
  return (
    <section aria-labelledby="commands-title">
      <h3 id="commands-title">Commands</h3>
      {canCommand && <SendCommand satellite={satellite} installations={installations}
        needsInstallation={needsInstallation} />}
      <ErrorText>{error}</ErrorText>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Commands, newest first</caption>
          <thead><tr><th scope="col">Command</th><th scope="col">Priority</th><th scope="col">Status</th>
            <th scope="col">Attempts</th><th scope="col">Queued</th><th scope="col">Updated</th>
            <th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {commands.map((command) => (
              <tr key={command.id} data-command={command.id}>
                <th scope="row">{lower(command.commandType)}</th>
                <td>{lower(command.priority)}</td>
                <td className={`command-${command.status.toLowerCase()}`}>{lower(command.status)}
                  {command.late && " (late)"}{command.errorMessage && `: ${command.errorMessage}`}</td>
                <td className="num">{command.attempts}</td>
                <td><Time at={command.createdAt} /></td>
                <td><Time at={command.updatedAt} /></td>
                <td>{canCommand && OPEN_COMMANDS.includes(command.status) && (
                  <Action run={() => graphql(CANCEL, { id: command.id })}>Cancel</Action>)}</td>
              </tr>
            ))}
            {commands.length === 0 && <tr><td colSpan={7}>No commands yet.</td></tr>}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Events({ satellite }) {
  const { data, error } = useQuery(EVENTS, { id: satellite.id });
  const [live, setLive] = useState([]);
  useSubscription(EVENT_UPDATES, { id: satellite.id }, (update) => {
    setLive((seen) => [update.satelliteEvents, ...seen].slice(0, KEEP));
  });
  const loaded = data?.satellite?.events.edges.map((edge) => edge.node) ?? [];
  const ids = new Set(live.map((event) => event.id));
  const events = [...live, ...loaded.filter((event) => !ids.has(event.id))].slice(0, KEEP);
  return (
    <section aria-labelledby="events-title">
      <h3 id="events-title">Events <small>(live)</small></h3>
      <ErrorText>{error}</ErrorText>
      <ol className="events" aria-live="polite">
        {events.map((event) => (
          <li key={event.id} data-event={event.id}>
            <Time at={event.timestamp} /> <strong>{event.type}</strong>
            <details><summary>data</summary><Json value={event.data} /></details>
          </li>
        ))}
        {events.length === 0 && <li>No events yet.</li>}
      </ol>
    </section>
  );
}

function Metrics({ satellite, allowed }) {
  const [range, setRange] = useState("hour");
  const [seconds, resolution] = RANGES[range];
  const variables = useMemo(() => {
    const to = Date.now();
    return { id: satellite.id, resolution, from: new Date(to - seconds * 1000).toISOString(),
      to: new Date(to).toISOString() };
  }, [satellite.id, resolution, seconds]);
  const { data, error } = useQuery(allowed ? HISTORY : null, variables);
  const buckets = data?.satellite?.metricsHistory ?? [];
  const times = buckets.map((bucket) => Date.parse(bucket.start) / 1000);
  const span = [Date.parse(variables.from) / 1000, Date.parse(variables.to) / 1000];
  const cpu = useMemo(() => [
    { label: "CPU avg", values: buckets.map((b) => b.cpuAvg) },
    { label: "CPU max", values: buckets.map((b) => b.cpuMax) }], [buckets]);
  const memory = useMemo(() => [
    { label: "Memory avg", values: buckets.map((b) => b.memoryAvgMb) },
    { label: "Memory max", values: buckets.map((b) => b.memoryMaxMb) }], [buckets]);
  return (
    <section aria-labelledby="metrics-title">
      <div className="toolbar">
        <h3 id="metrics-title">Metrics</h3>
        <div role="group" aria-label="Range" className="buttons">
          {Object.keys(RANGES).map((name) => (
            <button key={name} type="button" aria-pressed={range === name}
              className={range === name ? "" : "secondary"} onClick={() => setRange(name)}>{name}</button>
          ))}
        </div>
      </div>
      {!allowed && <p>Metric history of a global satellite is for global administrators.</p>}
      <ErrorText>{error}</ErrorText>
      {allowed && data && buckets.length === 0 && <p>No heartbeats in this range.</p>}
      {allowed && buckets.length > 0 && (
        <div className="charts">
          <Chart title="CPU %" times={times} series={cpu} span={span} unit=" %" />
          <Chart title="Memory MB" times={times} series={memory} span={span} unit=" MB" />
        </div>
      )}
    </section>
  );
}

function Processes({ processes }) {
  return (
    <section aria-labelledby="processes-title">
      <h3 id="processes-title">Processes</h3>
      <div className="table-wrap">
        <table>
          <thead><tr><th scope="col">Process</th><th scope="col">Server</th><th scope="col">Status</th>
            <th scope="col">Health</th><th scope="col">PID</th><th scope="col">Started</th></tr></thead>
          <tbody>
            {processes.map((process) => (
              <tr key={process.id}>
                <th scope="row">{process.processId}</th><td>{process.serverName || "–"}</td>
                <td>{process.status}{process.errorMessage && `: ${process.errorMessage}`}</td>
                <td><span className={`badge health-${process.healthStatus}`}>{process.healthStatus}</span></td>
                <td className="num">{process.osPid ?? "–"}</td><td><Time at={process.startedAt} /></td>
              </tr>
            ))}
            {processes.length === 0 && <tr><td colSpan={6}>No processes reported.</td></tr>}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Sessions({ sessions }) {
  const nodes = sessions.edges.map((edge) => edge.node);
  return (
    <section aria-labelledby="sessions-title">
      <h3 id="sessions-title">Client sessions <small>({sessions.totalCount})</small></h3>
      <div className="table-wrap">
        <table>
          <thead><tr><th scope="col">Client</th><th scope="col">User</th><th scope="col">Transport</th>
            <th scope="col">Connected</th><th scope="col">Last activity</th><th scope="col">Tool calls</th>
            <th scope="col">Open</th></tr></thead>
          <tbody>
            {nodes.map((session) => (
              <tr key={session.id}>
                <th scope="row">{session.clientName || session.clientType || session.sessionId.slice(0, 12)}</th>
                <td>{session.user?.email || "–"}</td><td>{session.transport || "–"}</td>
                <td><Time at={session.connectedAt} /></td><td><Time at={session.lastActivityAt} /></td>
                <td className="num">{session.toolExecutionCount ?? 0}</td><td>{session.open ? "yes" : "no"}</td>
              </tr>
            ))}
            {nodes.length === 0 && <tr><td colSpan={7}>No client sessions.</td></tr>}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Configuration({ satellite, installations }) {
  const state = satellite.configState;
  return (
    <section aria-labelledby="config-title">
      <h3 id="config-title">Configuration</h3>
      {state ? (
        <dl className="facts">
          <div><dt>Last fetched</dt><dd><Time at={state.refreshedAt} /></dd></div>
          <div><dt>Servers</dt><dd>{state.serverCount ?? "–"}</dd></div>
          <div><dt>Teams</dt><dd>{state.teamsCount ?? "–"}</dd></div>
          <div><dt>Hash</dt><dd><code>{state.configHash?.slice(0, 12) || "–"}</code></dd></div>
          <div><dt>Last error</dt><dd>{state.lastError
            ? `${state.lastError.type || "error"}: ${state.lastError.message || ""}` : "none"}</dd></div>
        </dl>
      ) : <p>The satellite has not fetched its configuration yet.</p>}
      {installations.map((item) => (
        <details key={item.id}>
          <summary>{item.name} <small>({item.status}{item.enabled ? "" : ", disabled"})</small></summary>
          <Json value={item.configPreview} />
        </details>
      ))}
    </section>
  );
}

export function SatellitePage({ id }) {
  const viewer = useViewer();
  // Processes, sessions and configuration change with heartbeats and events: re-read.
  const { data, error, reload } = useQuery(SATELLITE, { id }, { every: REFRESH_MS });
  const [status, setStatus] = useState(null);
  useSubscription(STATUS_CHANGES, {}, useCallback((update) => {
    const changed = update.satelliteStatusChanged.satellite;
    if (changed.id === id) setStatus(changed);
  }, [id]));
  useEffect(() => setStatus(null), [data]); // a fresh read supersedes earlier live changes
  const loaded = data?.satellite;
  const teamId = loaded?.teamId;
  const global = loaded?.satelliteType === "GLOBAL";
  // What it serves that this person may see: its team's installations, or for a global
  // satellite those of every team they administer.
  const teamIds = !loaded ? [] : global
    ? viewer.teams.filter((team) => viewer.adminOf(team.id)).map((team) => team.id) : [teamId];
  const installs = useQuery(installationsOf(teamIds),
    Object.fromEntries(teamIds.map((team, index) => [`t${index}`, team])), { every: REFRESH_MS });
  if (error && !loaded) return <ErrorText>{error}</ErrorText>;
  if (!data) return <p>Loading…</p>;
  if (!loaded) return <p role="alert">No such satellite, or not one you may see. <Link to="/">Back to the fleet</Link></p>;
  const satellite = status ? { ...loaded, ...status } : loaded;
  const admin = global ? viewer.globalAdmin : viewer.adminOf(teamId);
  const installations = Object.values(installs.data ?? {}).flat();
  const needsInstallation = global && !viewer.globalAdmin;
  const canCommand = admin || (needsInstallation && installations.length > 0);
  const historyAllowed = !global || viewer.globalAdmin;
  return (
    <article aria-labelledby="satellite-title">
      <p><Link to="/">← Fleet</Link></p>
      <h2 id="satellite-title">{satellite.name}</h2>
      <Summary satellite={satellite} viewer={viewer} />
      {admin && <Manage satellite={satellite} onChanged={reload} />}
      <Metrics satellite={satellite} allowed={historyAllowed} />
      <Processes processes={satellite.processes} />
      <Commands satellite={satellite} canCommand={canCommand} installations={installations}
        needsInstallation={needsInstallation} />
      <Events satellite={satellite} />
      <Sessions sessions={satellite.clientSessions} />
      <Configuration satellite={satellite} installations={installations} />
    </article>
  );
}
