// Alerts, live: open and acknowledged alerts (and those resolved while the page is open),
// acknowledge and silence where the person may, and the webhooks they manage.
import { useMemo, useState } from "react";
import { graphql } from "./api.js";
import { Link } from "./router.jsx";
import {
  Action, ErrorText, ShownOnce, Time, lower, newestFirst, parseTyped, useQuery, useSubscription,
  useViewer,
} from "./ui.jsx";

const ALERT_FIELDS = `id rule subject severity state summary occurrences teamId satelliteId
  openedAt lastSeenAt resolvedAt acknowledgedAt silencedUntil`;
const ALERTS = `{ alerts(state: [OPEN, ACKNOWLEDGED], first: 100) { totalCount
  edges { node { ${ALERT_FIELDS} } } } }`;
const CHANGES = `subscription { alertChanged { transition alert { ${ALERT_FIELDS} } } }`;
const ACKNOWLEDGE = `mutation ($id: ID!) { acknowledgeAlert(id: $id) { ${ALERT_FIELDS} } }`;
const SILENCE = `mutation ($id: ID!, $until: DateTime) { silenceAlert(id: $id, until: $until) {
  ${ALERT_FIELDS} } }`;
const WEBHOOK_FIELDS = `id teamId url description enabled consecutiveFailures disabledReason createdAt`;
const WEBHOOKS = `{ webhooks { ${WEBHOOK_FIELDS} } }`;
const CREATE_WEBHOOK = `mutation ($url: String!, $teamId: ID, $description: String!) {
  createWebhook(url: $url, teamId: $teamId, description: $description) { secret webhook { id } } }`;
const ENABLE_WEBHOOK = `mutation ($id: ID!) { enableWebhook(id: $id) { id } }`;
const DELETE_WEBHOOK = `mutation ($id: ID!) { deleteWebhook(id: $id) }`;
const TEST_WEBHOOK = `mutation ($id: ID!) { testWebhook(id: $id) { id state } }`;

const RULES = `query ($teamId: ID) { alertRules(teamId: $teamId) {
  rule description severity enabled params teamId } }`;
const SET_RULE = `mutation ($rule: AlertRule!, $teamId: ID, $enabled: Boolean, $params: JSON,
                            $reset: Boolean!) {
  setAlertRule(rule: $rule, teamId: $teamId, enabled: $enabled, params: $params, reset: $reset) {
    rule enabled params teamId } }`;

const hoursFromNow = (hours) => new Date(Date.now() + hours * 3600 * 1000).toISOString();

function AlertRow({ alert, viewer, onChanged }) {
  const manage = alert.teamId ? viewer.adminOf(alert.teamId) : viewer.globalAdmin;
  const act = (query, variables) => async () => onChanged((await graphql(query, variables)));
  const silenced = alert.silencedUntil && Date.parse(alert.silencedUntil) > Date.now();
  return (
    <tr data-alert={alert.id} className={`alert-${alert.state.toLowerCase()}`}>
      <td><span className={`badge severity-${alert.severity.toLowerCase()}`}>{lower(alert.severity)}</span></td>
      <th scope="row">{alert.summary}</th>
      <td className="alert-state">{lower(alert.state)}{silenced && " (silenced)"}</td>
      <td>{alert.satelliteId ? <Link to={`/satellites/${alert.satelliteId}`}>satellite</Link>
        : lower(alert.rule)}</td>
      <td>{viewer.teamName(alert.teamId)}</td>
      <td><Time at={alert.openedAt} /></td>
      <td className="num">{alert.occurrences}</td>
      <td className="buttons">{manage && alert.state === "OPEN" && (
        <Action run={act(ACKNOWLEDGE, { id: alert.id })}>Acknowledge</Action>)}
      {manage && alert.state !== "RESOLVED" && !silenced && (
        <Action run={act(SILENCE, { id: alert.id, until: hoursFromNow(1) })}
          className="secondary">Silence 1 h</Action>)}</td>
    </tr>
  );
}

function Alerts() {
  const viewer = useViewer();
  const { data, error } = useQuery(ALERTS);
  const [changed, setChanged] = useState({});
  const remember = (alert) => setChanged((seen) => ({ ...seen, [alert.id]: alert }));
  useSubscription(CHANGES, {}, (update) => remember(update.alertChanged.alert));
  const alerts = useMemo(() => newestFirst(
    (data?.alerts.edges ?? []).map((edge) => edge.node), Object.values(changed), "openedAt"),
  [data, changed]);
  const open = alerts.filter((alert) => alert.state !== "RESOLVED").length;
  return (
    <section aria-labelledby="alerts-title">
      <h2 id="alerts-title">Alerts</h2>
      <ErrorText>{error}</ErrorText>
      <p aria-live="polite" className="summary">{data ? `${open} open or acknowledged` : "Loading…"}</p>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Alerts, newest first</caption>
          <thead><tr><th scope="col">Severity</th><th scope="col">Summary</th><th scope="col">State</th>
            <th scope="col">Subject</th><th scope="col">Team</th><th scope="col">Opened</th>
            <th scope="col">Seen</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {alerts.map((alert) => (
              <AlertRow key={alert.id} alert={alert} viewer={viewer}
                onChanged={(result) => remember(Object.values(result)[0])} />
            ))}
            {data && alerts.length === 0 && <tr><td colSpan={8}>No open alerts.</td></tr>}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function NewWebhook({ onCreated }) {
  const viewer = useViewer();
  const teams = viewer.teams.filter((team) => viewer.adminOf(team.id));
  const [form, setForm] = useState({ url: "", teamId: viewer.globalAdmin ? "" : teams[0]?.id ?? "",
    description: "" });
  const [secret, setSecret] = useState(null);
  const [error, setError] = useState("");
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    setError("");
    try {
      const data = await graphql(CREATE_WEBHOOK, { url: form.url, teamId: form.teamId || null,
        description: form.description });
      setSecret(data.createWebhook.secret);
      onCreated();
    } catch (failure) {
      setError(failure.message);
    }
  };
  if (secret) return <ShownOnce label="Signing secret" value={secret} />;
  return (
    <form onSubmit={submit} className="inline-form" aria-label="Add a webhook">
      <label>URL<input type="url" required value={form.url} onChange={set("url")}
        placeholder="https://hooks.example.com/groundstation" maxLength={2048} /></label>
      <label>Team
        <select value={form.teamId} onChange={set("teamId")}>
          {viewer.globalAdmin && <option value="">global (every team)</option>}
          {teams.map((team) => <option key={team.id} value={team.id}>{team.name}</option>)}
        </select>
      </label>
      <label>Description<input value={form.description} onChange={set("description")} maxLength={200} /></label>
      <button type="submit">Add webhook</button>
      <ErrorText>{error}</ErrorText>
    </form>
  );
}

function Webhooks() {
  const viewer = useViewer();
  const { data, error, reload } = useQuery(WEBHOOKS);
  const run = (query, id) => async () => { await graphql(query, { id }); reload(); };
  return (
    <section aria-labelledby="webhooks-title">
      <h2 id="webhooks-title">Webhooks</h2>
      <ErrorText>{error}</ErrorText>
      <div className="table-wrap">
        <table>
          <thead><tr><th scope="col">URL</th><th scope="col">Team</th><th scope="col">State</th>
            <th scope="col">Failures in a row</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {(data?.webhooks ?? []).map((hook) => (
              <tr key={hook.id}>
                <th scope="row">{hook.url}<br /><small>{hook.description}</small></th>
                <td>{viewer.teamName(hook.teamId)}</td>
                <td>{hook.enabled ? "enabled" : `disabled: ${hook.disabledReason || ""}`}</td>
                <td className="num">{hook.consecutiveFailures}</td>
                <td className="buttons">
                  {!hook.enabled && <Action run={run(ENABLE_WEBHOOK, hook.id)}>Enable</Action>}
                  <Action run={run(TEST_WEBHOOK, hook.id)} className="secondary">Send test</Action>
                  <Action run={run(DELETE_WEBHOOK, hook.id)} className="danger"
                    confirm={`Delete the webhook to ${hook.url}?`}>Delete</Action>
                </td>
              </tr>
            ))}
            {data && data.webhooks.length === 0 && <tr><td colSpan={5}>No webhooks.</td></tr>}
          </tbody>
        </table>
      </div>
      <details className="panel"><summary>Add a webhook</summary><NewWebhook onCreated={reload} /></details>
    </section>
  );
}

function RuleRow({ rule, teamId, onSaved }) {
  const [enabled, setEnabled] = useState(rule.enabled);
  const [params, setParams] = useState(JSON.stringify(rule.params));
  // Errors (bad JSON, a refused setting) are said beside the button (`Action`).
  const save = async (reset) => {
    const parsed = parseTyped(params, "The parameters", '{"heartbeats": 3}');
    await graphql(SET_RULE, { rule: rule.rule, teamId, enabled: reset ? null : enabled,
      params: reset ? null : parsed, reset });
    onSaved();
  };
  const label = lower(rule.rule);
  return (
    <tr data-rule={rule.rule}>
      <th scope="row">{label}<br /><small>{rule.description}</small></th>
      <td><span className={`badge severity-${rule.severity.toLowerCase()}`}>{lower(rule.severity)}</span></td>
      <td><input type="checkbox" role="switch" checked={enabled} aria-label={`${label} enabled`}
        onChange={(event) => setEnabled(event.target.checked)} /></td>
      <td><input value={params} onChange={(event) => setParams(event.target.value)}
        aria-label={`${label} parameters`} maxLength={2000} /></td>
      <td className="buttons">
        <Action run={() => save(false)}>Save</Action>
        {teamId && rule.teamId && <Action run={() => save(true)} className="secondary">
          Use the global settings</Action>}
      </td>
    </tr>
  );
}

// The rules' settings: global (global administrators) or a team's overrides (its admins).
function Rules() {
  const viewer = useViewer();
  const teams = viewer.teams.filter((team) => viewer.adminOf(team.id));
  const [teamId, setTeamId] = useState(viewer.globalAdmin ? "" : teams[0]?.id ?? "");
  const { data, error, reload } = useQuery(RULES, { teamId: teamId || null });
  return (
    <section aria-labelledby="rules-title">
      <div className="toolbar">
        <h2 id="rules-title">Alert rules</h2>
        <label>Settings of
          <select value={teamId} onChange={(event) => setTeamId(event.target.value)}>
            {viewer.globalAdmin && <option value="">every team (global)</option>}
            {teams.map((team) => <option key={team.id} value={team.id}>{team.name}</option>)}
          </select>
        </label>
      </div>
      <ErrorText>{error}</ErrorText>
      <div className="table-wrap">
        <table>
          <thead><tr><th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">Enabled</th>
            <th scope="col">Parameters</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {(data?.alertRules ?? []).map((rule) => (
              <RuleRow key={`${teamId}|${rule.rule}|${rule.teamId}|${JSON.stringify(rule.params)}|${rule.enabled}`}
                rule={rule} teamId={teamId || null} onSaved={reload} />))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function AlertsPage() {
  const viewer = useViewer();
  const manages = viewer.globalAdmin || viewer.teams.some((team) => viewer.adminOf(team.id));
  return <><Alerts />{manages && <><Rules /><Webhooks /></>}</>;
}
