import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

const HEIGHT = 180;

/**
 * A time-series chart over uPlot. `x` is epoch seconds; each series is `{label, values,
 * color, dash?, sum?, points?}` (`sum`: the summary gives its total, otherwise its peak). The
 * canvas follows the width of its box. `data-points` counts the first series' non-zero
 * values, so tests can see the chart has data.
 */
export function Chart({ testid, title, x, series, format = String, utc = false }) {
  const box = useRef(null);
  const plot = useRef(null);
  // A different set of series needs a new plot; new values only need setData.
  const shape = `${series.map((s) => s.label).join("|")}|${utc}`;
  const data = [x, ...series.map((s) => s.values)];

  useEffect(() => {
    const element = box.current;
    const chart = new uPlot(
      {
        width: Math.max(element.clientWidth, 100),
        height: HEIGHT,
        ...(utc && { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC") }),
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [
          { stroke: "#374151", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#d1d5db" } },
          {
            stroke: "#374151",
            // Wide enough for the longest tick label ("$0.0000004", "850 µs").
            size: (_, values) => (values ? Math.max(...values.map((value) => value.length)) * 7 + 20 : 40),
            grid: { stroke: "#e5e7eb" },
            ticks: { stroke: "#d1d5db" },
            values: (_, ticks) => ticks.map(format),
          },
        ],
        series: [
          {},
          ...series.map((s, index) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            dash: s.dash,
            fill: index === 0 ? `${s.color}1f` : undefined,
            // Dots for series with gaps (percentiles), where a lone value has no line.
            points: { show: s.points ?? false, size: 5, fill: s.color },
            value: (_, value) => (value === null || value === undefined ? "—" : format(value)),
          })),
        ],
      },
      data,
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(([entry]) => {
      const width = Math.floor(entry.contentRect.width);
      if (width > 0 && width !== chart.width) chart.setSize({ width, height: HEIGHT });
    });
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  const points = series[0]?.values.filter((value) => value !== null && value !== 0).length ?? 0;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div
        ref={box}
        class="chart-box"
        role="img"
        aria-label={describe(title, x, series, format)}
        data-testid={testid}
        data-points={points}
      />
    </figure>
  );
}

/** The chart in one sentence for screen readers. */
function describe(title, x, series, format) {
  if (series.every((s) => s.values.every((value) => !value))) {
    return `${title}: no data in this period.`;
  }
  const parts = series.map((s) => {
    const values = s.values.filter((value) => value !== null && value !== undefined);
    if (values.length === 0) return `${s.label}: no data`;
    if (s.sum) return `${s.label}: ${format(values.reduce((a, b) => a + b, 0))} in total`;
    return `${s.label}: peak ${format(Math.max(...values))}`;
  });
  return `${title}, ${x.length} points: ${parts.join("; ")}.`;
}
