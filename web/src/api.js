// One GraphQL request with the session cookie; the data, or an Error with the API's message.
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

// Where to go after signing in: a path on this server only (never another host).
export function nextPath(fallback = "/") {
  const next = new URLSearchParams(location.search).get("next") || fallback;
  return next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}
