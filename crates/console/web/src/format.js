// Display helpers. Money and GB-seconds arrive as exact decimal strings (up to 28
// digits); they are shown rounded to what a person reads (4 significant digits below 1,
// cents above $1) — the exact value is one API call away — and charts use floats.

const numberFormat = new Intl.NumberFormat("en-US");

/** 1234567 → "1,234,567"; null → "—". */
export function num(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return numberFormat.format(value);
}

/** A duration in milliseconds (fractions allowed): "850 µs", "12.3 ms", "4.21 s". */
export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value === 0) return "0 ms";
  if (value < 1) return `${Math.round(value * 1000)} µs`;
  if (value < 100) return `${trim(value.toFixed(value < 10 ? 2 : 1))} ms`;
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${trim((value / 1000).toFixed(2))} s`;
  return `${trim((value / 60_000).toFixed(1))} min`;
}

/** A step or window length: "1 min", "5 min", "1 h", "1 day". */
export function span(value) {
  const units = [
    [86_400_000, "day"],
    [3_600_000, "h"],
    [60_000, "min"],
    [1000, "s"],
  ];
  for (const [size, unit] of units) {
    if (value >= size && value % size === 0) return `${value / size} ${unit}${unit === "day" && value !== size ? "s" : ""}`;
  }
  return ms(value);
}

/** A duration in microseconds, as `ms` shows it. */
export const us = (value) => (value === null || value === undefined ? "—" : ms(value / 1000));

/** 1536 → "1.5 KB" (powers of 1024, as the limits are). */
export function bytes(value) {
  if (value === null || value === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${trim(size.toFixed(size < 10 ? 2 : 1))} ${units[unit]}`;
}

/** 0.123 → "12.3%". */
export function percent(share) {
  if (share === null || share === undefined || Number.isNaN(share)) return "—";
  return `${trim((share * 100).toFixed(share < 0.1 ? 2 : 1))}%`;
}

/** A decimal string for reading: "0.00744798005662990134" → "0.007448", "523.41334" → "523.41". */
export function decimal(text) {
  if (text === null || text === undefined || text === "") return "—";
  const value = Number.parseFloat(text);
  if (!Number.isFinite(value)) return String(text);
  const digits = Math.abs(value) >= 1 ? { maximumFractionDigits: 2 } : { maximumSignificantDigits: 4 };
  return value.toLocaleString("en-US", digits);
}

/** A USD decimal string, rounded as `decimal` does: "0.00000540846017" → "$0.000005408". */
export function usd(text) {
  if (text === null || text === undefined || text === "") return "—";
  const shown = decimal(text);
  return shown.startsWith("-") ? `-$${shown.slice(1)}` : `$${shown}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

/** Local date and time of an epoch-ms or RFC 3339 time. */
export function when(time) {
  if (time === null || time === undefined || time === "") return "—";
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? String(time) : dateTime.format(date);
}

/** "14:03:22.118" local, for log lines. */
export function clockMs(epochMs) {
  const date = new Date(epochMs);
  return `${clock.format(date)}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

const relativeFormat = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "3 minutes ago", "in 2 hours". */
export function relative(time, now = Date.now()) {
  if (time === null || time === undefined || time === "") return "—";
  const at = new Date(time).getTime();
  if (Number.isNaN(at)) return String(time);
  const seconds = Math.round((at - now) / 1000);
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relativeFormat.format(value, unit);
    value = Math.round(value / size);
  }
  return relativeFormat.format(value, "year");
}

/** Start of the current calendar month in UTC: the free tier and "this month" start there. */
export function monthStartMs(now = new Date()) {
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
}

/** A decimal string as a float, for charts and gauges only. */
export function float(text) {
  const value = Number.parseFloat(text);
  return Number.isFinite(value) ? value : 0;
}

function trim(fixed) {
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/** A float amount of USD for chart axes: "$0.0000004", "$1.23". */
export function usdFloat(value) {
  return `$${value.toLocaleString("en-US", { maximumSignificantDigits: 3 })}`;
}
