// The signed-in person's account: change the password (other sessions end).
import { useState } from "react";
import { graphql } from "./api.js";
import { ErrorText, useViewer } from "./ui.jsx";

const CHANGE = `mutation ($current: String!, $next: String!) {
  changePassword(currentPassword: $current, newPassword: $next) }`;

export function AccountPage() {
  const viewer = useViewer();
  const [form, setForm] = useState({ current: "", next: "", again: "" });
  const [error, setError] = useState("");
  const [done, setDone] = useState(false);
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    setDone(false);
    if (form.next !== form.again) { setError("The new passwords differ."); return; }
    if (form.next.length < 8) { setError("A password has at least 8 characters."); return; }
    setError("");
    try {
      await graphql(CHANGE, { current: form.current, next: form.next });
      setForm({ current: "", next: "", again: "" });
      setDone(true);
    } catch (failure) {
      setError(failure.message);
    }
  };
  return (
    <section aria-labelledby="account-title" className="narrow">
      <h2 id="account-title">Account</h2>
      <p>{viewer.me.email} · {viewer.me.globalRole.toLowerCase().replace("_", " ")}</p>
      <form onSubmit={submit} className="stacked-form" aria-label="Change password">
        <h3>Change password</h3>
        <label>Current password<input type="password" autoComplete="current-password" required
          value={form.current} onChange={set("current")} /></label>
        <label>New password<input type="password" autoComplete="new-password" required minLength={8}
          maxLength={1024} value={form.next} onChange={set("next")} /></label>
        <label>New password again<input type="password" autoComplete="new-password" required
          value={form.again} onChange={set("again")} /></label>
        <button type="submit">Change password</button>
        {done && <p role="status">Password changed; your other sessions have ended.</p>}
        <ErrorText>{error}</ErrorText>
      </form>
    </section>
  );
}
