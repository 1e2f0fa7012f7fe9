import { bytes, num, relative, us, when } from "../format.js";
import { Facts } from "./Facts.jsx";

/** An invocation record (`InvocationView`). */
export function InvocationFacts({ record }) {
  return (
    <Facts
      class="record"
      items={[
        ["Status", <span class={record.status >= 400 ? "bad" : "good"}>{record.status}</span>],
        ["Outcome", <span class={`outcome ${record.outcome}`}>{record.outcome}</span>],
        ["Started", <span title={relative(record.started_at_ms)}>{when(record.started_at_ms)}</span>],
        ["Duration", us(record.duration_us)],
        ["Billed", `${num(record.billed_ms)} ms`],
        ["Memory", `${num(record.memory_mb)} MB`],
        ["Cold start", record.cold_start ? "yes" : "no"],
        ["Trigger", record.trigger],
        ["Version", `v${record.version}`],
        ["Bytes in", bytes(record.bytes_in)],
        ["Bytes out", bytes(record.bytes_out)],
      ]}
    />
  );
}
