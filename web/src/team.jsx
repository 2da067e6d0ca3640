// A team: its installations and their status (install, edit, roll back where the person
// administers the team), its members, its usage over time, and its registration tokens.
import { useMemo, useState } from "react";
import { graphql } from "./api.js";
import { Chart } from "./chart.jsx";
import { IssueToken } from "./tokens.jsx";
import { Action, ErrorText, Json, REFRESH_MS, Time, parseTyped, useQuery, useViewer } from "./ui.jsx";

const TEAM = `query ($id: ID!, $from: DateTime!, $to: DateTime!) { team(id: $id) {
  id name slug maxProcesses maxMemoryPerProcessMb maxCpuPercent
  members { user { id email } role }
  usageHistory(from: $from, to: $to, resolution: HOUR) { start calls errors sessions }
} }`;
const INSTALLATIONS = `query ($teamId: ID!) { installations(teamId: $teamId) {
  id name status statusMessage enabled revision updatedAt missingFields configPreview
  server { name slug transportType } revisions { revision createdAt actor { email } } } }`;
const CATALOGUE = `{ mcpServers { id name slug description transportType } }`;
const INSTALL = `mutation ($teamId: ID!, $serverId: ID!, $name: String) {
  installMcpServer(teamId: $teamId, serverId: $serverId, name: $name) { id } }`;
const UPDATE = `mutation ($id: ID!, $name: String, $args: [String!], $env: JSON) {
  updateInstallation(id: $id, name: $name, args: $args, env: $env) { id revision } }`;
const ROLLBACK = `mutation ($id: ID!, $revision: Int!) { rollbackInstallation(id: $id, revision: $revision) {
  id revision } }`;
const WEEK_MS = 7 * 86400 * 1000;

function Install({ teamId, onInstalled }) {
  const { data, error } = useQuery(CATALOGUE);
  const [form, setForm] = useState({ serverId: "", name: "" });
  const [failure, setFailure] = useState("");
  const servers = data?.mcpServers ?? [];
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    setFailure("");
    try {
      await graphql(INSTALL, { teamId, serverId: form.serverId || servers[0]?.id,
        name: form.name || null });
      setForm({ serverId: "", name: "" });
      onInstalled();
    } catch (problem) {
      setFailure(problem.message);
    }
  };
  return (
    <form onSubmit={submit} className="inline-form" aria-label="Install a server">
      <label>Catalogue server
        <select value={form.serverId} onChange={set("serverId")} required={servers.length === 0}>
          {servers.map((server) => <option key={server.id} value={server.id}>
            {server.name} ({server.transportType.toLowerCase()})</option>)}
        </select>
      </label>
      <label>Name (optional)<input value={form.name} onChange={set("name")} maxLength={100} /></label>
      <button type="submit" disabled={servers.length === 0}>Install</button>
      <ErrorText>{error || failure}</ErrorText>
    </form>
  );
}

function Edit({ installation, onSaved }) {
  const [form, setForm] = useState({ name: installation.name, args: "", env: "" });
  const [error, setError] = useState("");
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    let env = null;
    try {
      env = parseTyped(form.env, "Environment", '{"API_KEY": "…"}', null);
    } catch (failure) {
      setError(failure.message);
      return;
    }
    setError("");
    try {
      await graphql(UPDATE, { id: installation.id,
        name: form.name !== installation.name ? form.name : null,
        args: form.args.trim() ? form.args.split("\n").map((line) => line.trim()).filter(Boolean) : null,
        env });
      onSaved();
    } catch (failure) {
      setError(failure.message);
    }
  };
  return (
    <form onSubmit={submit} className="stacked-form" aria-label={`Edit ${installation.name}`}>
      <label>Name<input value={form.name} onChange={set("name")} maxLength={100} /></label>
      <label>Arguments (one per line; empty: unchanged)
        <textarea rows={3} value={form.args} onChange={set("args")} /></label>
      <label>Environment (JSON object; empty: unchanged)
        <textarea rows={3} value={form.env} onChange={set("env")} placeholder='{"API_KEY": "…"}' /></label>
      <button type="submit">Save as a new revision</button>
      <ErrorText>{error}</ErrorText>
    </form>
  );
}

function Installation({ installation, admin, onChanged }) {
  const older = installation.revisions.filter((item) => item.revision !== installation.revision);
  return (
    <tr data-installation={installation.id}>
      <th scope="row">{installation.name}<br /><small>{installation.server.name}</small></th>
      <td>{installation.status}{installation.statusMessage && `: ${installation.statusMessage}`}
        {installation.missingFields.length > 0 && <><br /><small className="missing">{installation.missingFields.join("; ")}</small></>}</td>
      <td className="num">{installation.revision}</td>
      <td><Time at={installation.updatedAt} /></td>
      <td>
        <details><summary>Configuration</summary><Json value={installation.configPreview} /></details>
        {admin && <details><summary>Edit</summary><Edit installation={installation} onSaved={onChanged} /></details>}
        {admin && older.length > 0 && (
          <details><summary>Revisions</summary>
            <ul className="plain">{older.map((item) => (
              <li key={item.revision}>#{item.revision} <Time at={item.createdAt} /> {item.actor?.email || ""}{" "}
                <Action run={async () => { await graphql(ROLLBACK, { id: installation.id, revision: item.revision }); onChanged(); }}
                  className="secondary" confirm={`Restore revision ${item.revision} of ${installation.name}?`}>
                  Roll back to #{item.revision}</Action></li>))}
            </ul>
          </details>)}
      </td>
    </tr>
  );
}

function Usage({ buckets, range }) {
  const times = buckets.map((bucket) => Date.parse(bucket.start) / 1000);
  const series = useMemo(() => [
    { label: "Calls", values: buckets.map((b) => b.calls) },
    { label: "Errors", values: buckets.map((b) => b.errors) },
    { label: "Sessions", values: buckets.map((b) => b.sessions) }], [buckets]);
  return buckets.length > 0
    ? <Chart title="Usage per hour, last 7 days" times={times} series={series}
      span={[Date.parse(range.from) / 1000, Date.parse(range.to) / 1000]} />
    : <p>No usage in the last 7 days.</p>;
}

export function TeamPage({ id }) {
  const viewer = useViewer();
  const [range] = useState(() => ({ from: new Date(Date.now() - WEEK_MS).toISOString(),
    to: new Date().toISOString() }));
  const team = useQuery(TEAM, { id, ...range });
  const installs = useQuery(INSTALLATIONS, { teamId: id }, { every: REFRESH_MS });
  const admin = viewer.adminOf(id);
  if (team.error && !team.data) return <ErrorText>{team.error}</ErrorText>;
  if (!team.data) return <p>Loading…</p>;
  const found = team.data.team;
  if (!found) return <p role="alert">No such team, or not one you may see.</p>;
  const installations = installs.data?.installations ?? [];
  return (
    <article aria-labelledby="team-title">
      <h2 id="team-title">{found.name} <small>({found.slug})</small></h2>
      <p className="summary">Limits: {found.maxProcesses ?? "no"} process limit,{" "}
        {found.maxMemoryPerProcessMb ? `${found.maxMemoryPerProcessMb} MB` : "no"} memory limit per process,{" "}
        {found.maxCpuPercent ? `${found.maxCpuPercent} %` : "no"} CPU limit.</p>
      <section aria-labelledby="installations-title">
        <h3 id="installations-title">Installations</h3>
        <ErrorText>{installs.error}</ErrorText>
        <div className="table-wrap">
          <table>
            <thead><tr><th scope="col">Installation</th><th scope="col">Status</th>
              <th scope="col">Revision</th><th scope="col">Changed</th><th scope="col">Details</th></tr></thead>
            <tbody>
              {installations.map((item) => <Installation key={item.id} installation={item} admin={admin}
                onChanged={installs.reload} />)}
              {installs.data && installations.length === 0 && <tr><td colSpan={5}>Nothing installed.</td></tr>}
            </tbody>
          </table>
        </div>
        {admin && <details className="panel"><summary>Install a catalogue server</summary>
          <Install teamId={id} onInstalled={installs.reload} /></details>}
      </section>
      <section aria-labelledby="usage-title">
        <h3 id="usage-title">Usage</h3>
        <Usage buckets={found.usageHistory} range={range} />
      </section>
      {admin && (
        <section aria-labelledby="members-title">
          <h3 id="members-title">Members</h3>
          <ul className="plain">{found.members.map((member) => (
            <li key={member.user.id}>{member.user.email} — {member.role === "TEAM_ADMIN" ? "admin" : "member"}</li>))}
          </ul>
          <IssueToken teamId={id} />
        </section>
      )}
    </article>
  );
}
