import { useEffect, useRef, useState } from "preact/hooks";
import { onTokenRefused, session } from "./api.js";
import { ConfirmHost } from "./components/Confirm.jsx";
import { PageHeader } from "./components/PageHeader.jsx";
import { Collection } from "./pages/Collection.jsx";
import { Data } from "./pages/Data.jsx";
import { FunctionPage } from "./pages/Function.jsx";
import { Functions } from "./pages/Functions.jsx";
import { Invocation } from "./pages/Invocation.jsx";
import { Logs } from "./pages/Logs.jsx";
import { Overview } from "./pages/Overview.jsx";
import { Queue } from "./pages/Queue.jsx";
import { SignIn } from "./pages/SignIn.jsx";
import { Usage } from "./pages/Usage.jsx";
import { Users } from "./pages/Users.jsx";
import { WebSockets } from "./pages/WebSockets.jsx";
import { useRoute } from "./router.js";

const NAV = [
  ["", "Overview"],
  ["functions", "Functions"],
  ["logs", "Logs"],
  ["usage", "Usage"],
  ["data", "Data"],
  ["users", "Users"],
  ["queue", "Queue"],
  ["websockets", "WebSockets"],
];

export function App() {
  const [token, setToken] = useState(session.token);
  const [notice, setNotice] = useState("");
  const route = useRoute();

  useEffect(() => {
    onTokenRefused(() => {
      session.clear();
      setNotice("Your session's token was refused. Sign in again with the current admin token.");
      setToken(null);
    });
  }, []);

  // Move focus to the new page's heading, so keyboard and screen-reader users start
  // there; not on the first load, where the browser's own start is expected.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.querySelector("main h1")?.focus();
  }, [route.path, token !== null]);

  const signOut = () => {
    session.clear();
    setNotice("Signed out.");
    setToken(null);
  };

  return (
    <>
      <a class="skip-link" href="#main" onClick={skipToMain}>
        Skip to content
      </a>
      <Header signedIn={token !== null} current={route.segments[0] ?? ""} path={route.path} onSignOut={signOut} />
      <main id="main" tabindex="-1">
        {token === null ? (
          <SignIn
            notice={notice}
            onSignedIn={(value) => {
              session.save(value);
              setNotice("");
              setToken(value);
            }}
          />
        ) : (
          <Page key={route.path} route={route} />
        )}
      </main>
      <ConfirmHost />
    </>
  );
}

function skipToMain(event) {
  // A plain #main would be read as a route.
  event.preventDefault();
  document.getElementById("main").focus();
}

function Header({ signedIn, current, path, onSignOut }) {
  const [open, setOpen] = useState(false);
  const button = useRef(null);
  useEffect(() => setOpen(false), [path]);

  const closeOnEscape = (event) => {
    if (event.key === "Escape" && open) {
      setOpen(false);
      button.current?.focus();
    }
  };

  return (
    <header class="site-header" onKeyDown={closeOnEscape}>
      <div class="bar">
        <a class="brand" href="#/">
          <img src="/favicon.svg" alt="" width="24" height="24" />
          gureum <span>console</span>
        </a>
        {signedIn && (
          <>
            <button type="button" class="sign-out" data-testid="signout" onClick={onSignOut}>
              Sign out
            </button>
            <button
              ref={button}
              type="button"
              class="menu-button"
              aria-expanded={open ? "true" : "false"}
              aria-controls="site-nav"
              data-testid="menu-button"
              onClick={() => setOpen(!open)}
            >
              Menu
            </button>
          </>
        )}
      </div>
      {signedIn && (
        <nav id="site-nav" class={open ? "site-nav open" : "site-nav"} aria-label="Console">
          <ul>
            {NAV.map(([key, label]) => (
              <li key={key}>
                <a href={`#/${key}`} aria-current={key === current ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      )}
    </header>
  );
}

function Page({ route }) {
  const [first, second, third, fourth] = route.segments;
  const params = route.params;
  switch (first) {
    case undefined:
      return <Overview />;
    case "functions":
      if (second === undefined) return <Functions />;
      if (third === undefined) return <FunctionPage name={second} tab={params.get("tab") ?? "overview"} />;
      if (third === "invocations" && fourth !== undefined && route.segments.length === 4) {
        return <Invocation name={second} id={fourth} />;
      }
      break;
    case "logs":
      if (second === undefined) return <Logs function={params.get("function") ?? ""} grep={params.get("grep") ?? ""} />;
      break;
    case "usage":
      if (second === undefined) return <Usage />;
      break;
    case "data":
      if (second === undefined) return <Data />;
      if (third === undefined) return <Collection name={second} />;
      break;
    case "users":
      if (second === undefined) return <Users />;
      break;
    case "queue":
      if (second === undefined) return <Queue />;
      break;
    case "websockets":
      if (second === undefined) return <WebSockets />;
      break;
  }
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        Nothing lives at <code>#{route.path}</code>. <a href="#/">Go to the overview</a>.
      </p>
    </>
  );
}
