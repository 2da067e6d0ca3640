// The signed-in pages: the header (who, where to go, sign out) and the view the address
// names. Someone not signed in is sent to /login and back.
import "@picocss/pico/css/pico.min.css";
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { AccountPage } from "./account.jsx";
import { AlertsPage } from "./alerts.jsx";
import { graphql } from "./api.js";
import { Fleet } from "./fleet.jsx";
import { Link, route, usePath } from "./router.jsx";
import { SatellitePage } from "./satellite.jsx";
import { TeamPage } from "./team.jsx";
import { ErrorText, ViewerContext, viewerOf } from "./ui.jsx";
import "./app.css";

const ME = `{ me { id email globalRole } teams { id name members { user { id } role } } }`;

function View({ path }) {
  const [name, id] = route(path);
  switch (name) {
    case "satellite": return <SatellitePage key={id} id={id} />;
    case "team": return <TeamPage key={id} id={id} />;
    case "alerts": return <AlertsPage />;
    case "account": return <AccountPage />;
    default: return <Fleet />;
  }
}

function App() {
  const path = usePath();
  const [viewer, setViewer] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    graphql(ME).then((data) => {
      if (!data.me) throw Object.assign(new Error("signed out"), { code: "UNAUTHENTICATED" });
      setViewer(viewerOf(data.me, data.teams));
    }).catch((failure) => {
      if (failure.code === "UNAUTHENTICATED") {
        location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      } else setError(failure.message);
    });
  }, []);
  const signOut = async () => { await graphql("mutation { logout }"); location.assign("/login"); };
  const current = (prefix) => (route(path)[0] === prefix ? "page" : undefined);
  return (
    <>
      <header className="top">
        <h1><Link to="/">Groundstation</Link></h1>
        <nav aria-label="Main">
          <Link to="/" aria-current={current("fleet")}>Fleet</Link>
          <Link to="/alerts" aria-current={current("alerts")}>Alerts</Link>
          {viewer?.teams.slice(0, 6).map((team) => (
            <Link key={team.id} to={`/teams/${team.id}`}
              aria-current={path === `/teams/${team.id}` ? "page" : undefined}>{team.name}</Link>))}
          <a href="/graphql">GraphiQL</a>
          {viewer && <Link to="/account" aria-current={current("account")}>{viewer.me.email}</Link>}
          {viewer && <button type="button" className="secondary" onClick={signOut}>Sign out</button>}
        </nav>
      </header>
      <main className="container-fluid">
        <ErrorText>{error}</ErrorText>
        {viewer && <ViewerContext.Provider value={viewer}><View path={path} /></ViewerContext.Provider>}
      </main>
    </>
  );
}

createRoot(document.getElementById("app")).render(<StrictMode><App /></StrictMode>);
