import { href } from "../router.js";

/** A schedule's last result, linked to the invocation of its last tick. */
export function ScheduleResult({ schedule }) {
  if (!schedule.last_invocation_id) return schedule.last_result ?? "—";
  return (
    <a href={href(["functions", schedule.function, "invocations", schedule.last_invocation_id])}>
      {schedule.last_result ?? "pending"}
    </a>
  );
}
