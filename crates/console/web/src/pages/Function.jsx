import { useState } from "preact/hooks";
import { api, seg } from "../api.js";
import { confirmAction } from "../components/Confirm.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Status } from "../components/Status.jsx";
import { Tabs } from "../components/Tabs.jsx";
import { useResource } from "../hooks.js";
import { href, navigate } from "../router.js";
import { FunctionConfig } from "./function/Config.jsx";
import { DeadLetters } from "./function/DeadLetters.jsx";
import { InvokeForm } from "./function/Invoke.jsx";
import { Invocations } from "./function/Invocations.jsx";
import { FunctionOverview } from "./function/Overview.jsx";
import { Versions } from "./function/Versions.jsx";

const TABS = [
  ["overview", "Overview"],
  ["versions", "Versions"],
  ["config", "Configuration"],
  ["invoke", "Test invoke"],
  ["invocations", "Invocations"],
  ["dead-letters", "Dead letters"],
];

/** One function: its traffic, versions, configuration, a test invoke and its queue. */
export function FunctionPage({ name, tab }) {
  const info = useResource((signal) => api(`/functions/${seg(name)}`, { signal }), [], { every: 10_000 });
  const versions = useResource((signal) => api(`/functions/${seg(name)}/versions`, { signal }), [], { every: 10_000 });
  const [outcome, setOutcome] = useState({ message: "", error: null });
  const fn = info.data;
  const live = versions.data?.find((version) => version.live);

  const changed = (message) => {
    setOutcome({ message, error: null });
    info.reload();
    versions.reload();
  };
  const report = (message) => setOutcome({ message, error: null });
  const failed = (error) => setOutcome({ message: "", error });

  const remove = async () => {
    const sure = await confirmAction({
      title: `Delete ${name}?`,
      body: "Every version, its logs and its routes are removed. This cannot be undone.",
      confirm: "Delete function",
    });
    if (!sure) return;
    try {
      await api(`/functions/${seg(name)}`, { method: "DELETE" });
      navigate(href(["functions"]));
    } catch (error) {
      failed(error);
    }
  };

  const current = TABS.some(([id]) => id === tab) ? tab : "overview";
  return (
    <>
      <PageHeader title={name} label={`${name} (function)`}>
        <a class="button" href={href(["logs"], { function: name })} data-testid="function-logs">
          Live logs
        </a>
        <button type="button" class="danger" onClick={remove} data-testid="delete-function">
          Delete function
        </button>
      </PageHeader>
      {fn && (
        <p class="subtitle">
          <span class="badge">{fn.runtime || live?.runtime || "unknown runtime"}</span> live <strong>v{fn.live_version}</strong>
          {fn.latest_version !== fn.live_version && <> (newest v{fn.latest_version})</>} ·{" "}
          <a href={fn.url} target="_blank" rel="noopener noreferrer" class="url">
            {fn.url}
          </a>
        </p>
      )}
      <Tabs
        label={`${name} sections`}
        current={current}
        items={TABS.map(([id, label]) => ({ id, label, href: href(["functions", name], { tab: id }) }))}
      />
      <Status error={outcome.error ?? info.error ?? versions.error} message={outcome.message} />
      {current === "overview" && <FunctionOverview name={name} />}
      {current === "versions" && (
        <Versions name={name} versions={versions.data} liveVersion={live?.version} onChanged={changed} onFailed={failed} />
      )}
      {current === "config" && <FunctionConfig name={name} fn={fn} version={live} />}
      {current === "invoke" && <InvokeForm name={name} />}
      {current === "invocations" && <Invocations name={name} />}
      {current === "dead-letters" && <DeadLetters name={name} onDone={report} onFailed={failed} />}
    </>
  );
}
