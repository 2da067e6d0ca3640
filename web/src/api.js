// The API as the pages use it: one GraphQL request with the session cookie, and one
// graphql-transport-ws connection shared by every live view of the page.
import { createClient } from "graphql-ws";

// The data, or an Error carrying the API's message and stable code.
export async function graphql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const result = await response.json();
  if (result.errors && result.errors.length) {
    const error = new Error(result.errors[0].message);
    error.code = result.errors[0].extensions?.code;
    throw error;
  }
  return result.data;
}

let client = null;

// Calls `onData` with each result's data; the returned function ends the subscription.
// The connection (cookie-authenticated) is opened once and retried forever.
export function subscribe(query, variables, onData) {
  if (client === null) {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
    client = createClient({ url, retryAttempts: Infinity, lazy: true, keepAlive: 20000 });
  }
  return client.subscribe({ query, variables }, {
    next: (message) => message.data && onData(message.data),
    error: () => {},
    complete: () => {},
  });
}

// Where to go after signing in: a path on this server only (never another host).
export function nextPath(fallback = "/") {
  const next = new URLSearchParams(location.search).get("next") || fallback;
  return next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}
