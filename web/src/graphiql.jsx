// GraphiQL from this server's own assets. Requests carry the session cookie
// (same origin), so every query runs with the signed-in person's role.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/style.css";
import { createRoot } from "react-dom/client";

const socketUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
const fetcher = createGraphiQLFetcher({
  url: "/graphql",
  subscriptionUrl: socketUrl,
  fetch: (input, init) => fetch(input, { ...init, credentials: "same-origin" }),
});

createRoot(document.getElementById("graphiql")).render(
  <GraphiQL fetcher={fetcher} defaultQuery={"{\n  me {\n    email\n    globalRole\n  }\n}\n"} />,
);
