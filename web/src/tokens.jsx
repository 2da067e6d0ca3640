// Issuing a registration token: global (global administrators) or for a team the person
// administers. The token is shown once, with the command that starts a satellite with it.
import { useState } from "react";
import { graphql } from "./api.js";
import { ErrorText, ShownOnce, useViewer } from "./ui.jsx";

const ISSUE = `mutation ($scope: TokenScope!, $teamId: ID, $hours: Int, $name: String) {
  createRegistrationToken(scope: $scope, teamId: $teamId, expiresInHours: $hours,
                          satelliteName: $name) {
    token registrationToken { id expiresAt satelliteName } } }`;
const NAME = /^[a-z0-9_-]{10,32}$/;

export function startCommand(token, name) {
  return `DEPLOYSTACK_BACKEND_URL=${location.origin} \\\n` +
    `DEPLOYSTACK_SATELLITE_NAME=${name || "<a name, 10-32 of a-z 0-9 _ ->"} \\\n` +
    `DEPLOYSTACK_REGISTRATION_TOKEN=${token} \\\nnpm start`;
}

export function IssueToken({ teamId = null }) {
  const viewer = useViewer();
  const teams = viewer.teams.filter((team) => viewer.adminOf(team.id));
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ scope: teamId || !viewer.globalAdmin ? "TEAM" : "GLOBAL",
    teamId: teamId ?? teams[0]?.id ?? "", name: "", hours: "" });
  const [issued, setIssued] = useState(null);
  const [error, setError] = useState("");
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });

  const submit = async (event) => {
    event.preventDefault();
    if (form.name && !NAME.test(form.name)) {
      setError("A satellite name has 10 to 32 characters of a-z, 0-9, _ and -.");
      return;
    }
    setError("");
    try {
      const data = await graphql(ISSUE, {
        scope: form.scope, teamId: form.scope === "TEAM" ? form.teamId : null,
        hours: form.hours ? Number(form.hours) : null, name: form.name || null,
      });
      setIssued({ token: data.createRegistrationToken.token, name: form.name });
    } catch (failure) {
      setError(failure.message);
    }
  };

  return (
    <details className="panel" open={open} onToggle={(event) => setOpen(event.target.open)}>
      <summary>Issue a registration token</summary>
      {issued ? (
        <ShownOnce label="Registration token" value={issued.token}>
          <p>Start a DeployStack satellite with it (single use):</p>
          <pre className="command">{startCommand(issued.token, issued.name)}</pre>
          <button type="button" onClick={() => setIssued(null)}>Issue another</button>
        </ShownOnce>
      ) : (
        <form onSubmit={submit} className="inline-form">
          <label>Scope
            <select value={form.scope} onChange={set("scope")} disabled={teamId !== null}>
              {viewer.globalAdmin && <option value="GLOBAL">global</option>}
              <option value="TEAM">team</option>
            </select>
          </label>
          {form.scope === "TEAM" && teamId === null && (
            <label>Team
              <select value={form.teamId} onChange={set("teamId")} required>
                {teams.map((team) => <option key={team.id} value={team.id}>{team.name}</option>)}
              </select>
            </label>
          )}
          <label>Satellite name (optional)
            <input value={form.name} onChange={set("name")} maxLength={32}
              placeholder="edge-satellite-01" />
          </label>
          <label>Valid for hours (optional)
            <input type="number" min="1" max="72" value={form.hours} onChange={set("hours")} />
          </label>
          <button type="submit">Issue token</button>
          <ErrorText>{error}</ErrorText>
        </form>
      )}
    </details>
  );
}
