import { RANGES } from "../hooks.js";

/** The chart window (15m … 7d) and a refresh button. */
export function RangePicker({ value, onChange, onRefresh, busy = false }) {
  return (
    <div class="toolbar">
      <fieldset class="segmented">
        <legend>Period</legend>
        {RANGES.map((range) => (
          <label key={range}>
            <input type="radio" name="range" value={range} checked={range === value} onChange={() => onChange(range)} />
            <span>{range}</span>
          </label>
        ))}
      </fieldset>
      <button type="button" onClick={onRefresh} disabled={busy} data-testid="refresh">
        Refresh
      </button>
    </div>
  );
}
