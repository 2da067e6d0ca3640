// Time series drawn by uPlot: full charts (metrics, usage) and the fleet's sparklines.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed"];

// `times` in seconds since the epoch; `series` is [{ label, values }]; `span` [from, to]
// in seconds fixes the time axis (a chart of one hour shows one hour, however sparse).
export function Chart({ title, times, series, span = null, height = 220, unit = "" }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((line) => line.label).join("|");
  const [from, to] = span ?? [null, null];

  useEffect(() => {
    const width = Math.max(280, box.current.clientWidth);
    plot.current = new uPlot({
      title, width, height,
      series: [{}, ...series.map((line, index) => ({
        label: line.label, stroke: COLOURS[index % COLOURS.length], width: 1.5,
        value: (_, value) => (value == null ? "–" : `${value.toFixed(1)}${unit}`),
      }))],
      axes: [{}, { size: 56 }],
      scales: from === null ? {} : { x: { time: true, range: () => [from, to] } },
    }, [times, ...series.map((line) => line.values)], box.current);
    const resize = new ResizeObserver(() => plot.current?.setSize({
      width: Math.max(280, box.current.clientWidth), height }));
    resize.observe(box.current);
    return () => { resize.disconnect(); plot.current.destroy(); plot.current = null; };
  }, [title, height, unit, shape, from, to]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    plot.current?.setData([times, ...series.map((line) => line.values)]);
  }, [times, series]);

  return <figure className="chart" ref={box} aria-label={title} />;
}

const SPARK = {
  width: 96, height: 24, legend: { show: false }, cursor: { show: false },
  scales: { x: { time: false } }, axes: [{ show: false }, { show: false }],
};

// A tiny line of recent values (the fleet's CPU and memory columns), no axes.
export function Sparkline({ values, label, colour = COLOURS[0] }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    plot.current = new uPlot({ ...SPARK, series: [{}, { stroke: colour, width: 1.25 }] },
      [[], []], box.current);
    return () => plot.current.destroy();
  }, [colour]);
  useEffect(() => {
    plot.current.setData([values.map((_, index) => index), values]);
  }, [values]);
  return <span className="sparkline" ref={box} role="img" aria-label={label} />;
}
