// The map, epoch by epoch. FIGURE.frames holds one frame per epoch (named by its number); this script
// adds in-between frames (plotly tweens neither 3D nor WebGL) and plays them when Play is pressed, the
// slider following; hover a point to see its image. body.dataset.epoch says which epoch is shown.
(function () {
  const map = document.getElementById("map");
  const caption = document.getElementById("caption");
  const hoverPanel = document.getElementById("hover-panel");
  const hoverThumb = document.getElementById("hover-thumb");
  const epochs = POINTS.epochs.map(String);
  const axes = ["x", "y", "z"];
  let current = POINTS.startAtLast ? epochs.length - 1 : 0;

  function mix(a, b, t) {
    return a.map(function (v, i) { return v + (b[i] - v) * t; });
  }

  function between(a, b, t, name) {
    return {
      name: name,
      traces: a.traces,
      data: a.data.map(function (trace, k) {
        const out = {};
        axes.forEach(function (axis) {
          if (trace[axis] !== undefined) out[axis] = mix(trace[axis], b.data[k][axis], t);
        });
        return out;
      })
    };
  }

  // Frames in playing order: epoch, its in-between frames, the next epoch, ...
  const byName = {};
  FIGURE.frames.forEach(function (f) { byName[f.name] = f; });
  const frames = [];
  epochs.forEach(function (name, i) {
    frames.push(byName[name]);
    if (i + 1 < epochs.length) {
      for (let k = 1; k < POINTS.tweens; k++) {
        frames.push(between(byName[name], byName[epochs[i + 1]], k / POINTS.tweens, name + "~" + k));
      }
    }
  });

  function show(i) {
    current = i;
    caption.textContent = POINTS.captions[i] || "";
    document.body.dataset.epoch = epochs[i];
  }

  function play() {
    const start = current >= epochs.length - 1 ? 0 : current;  // at the end: play again from the start
    const names = [];
    if (start !== current) names.push(epochs[start]);
    for (let i = start; i + 1 < epochs.length; i++) {
      for (let k = 1; k < POINTS.tweens; k++) names.push(epochs[i] + "~" + k);
      names.push(epochs[i + 1]);
    }
    if (!names.length) return;
    document.body.dataset.playing = "1";
    Plotly.animate(map, names, {
      mode: "immediate",
      transition: { duration: 0 },
      frame: names.map(function (n) {
        return { duration: n.indexOf("~") < 0 ? POINTS.holdMs : POINTS.stepMs, redraw: true };
      })
    });
  }

  function pause() {
    Plotly.animate(map, [null], { mode: "immediate", frame: { duration: 0, redraw: false }, transition: { duration: 0 } });
    document.body.dataset.playing = "0";
  }

  function pointOf(event) {
    const p = event && event.points && event.points[0];
    if (!p) return null;
    const i = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
    return Number.isInteger(i) && i >= 0 && i < POINTS.labels.length ? i : null;
  }

  function showHover(i) {
    const label = POINTS.classWord + " " + POINTS.labels[i];
    if (POINTS.thumbs[i]) { hoverThumb.src = POINTS.thumbs[i]; hoverThumb.style.display = "block"; }
    else hoverThumb.style.display = "none";
    hoverThumb.alt = label;
    document.getElementById("hover-label").textContent = label;
    document.getElementById("hover-file").textContent = POINTS.names[i] + "  (#" + POINTS.index[i] + ")";
    hoverPanel.style.display = "block";
    hoverPanel.style.opacity = "1";
    hoverPanel.dataset.point = String(i);
  }

  const layout = FIGURE.layout;
  layout.sliders[0].active = current;
  if (map.clientWidth < 600) {  // a phone: the slider takes the whole width, the buttons go under it
    Object.assign(layout.sliders[0], { x: 0, len: 1 });
    Object.assign(layout.updatemenus[0], { x: 0, y: 0, yanchor: "top", pad: { t: 95, r: 8 } });
  }
  const first = byName[epochs[current]];
  const data = FIGURE.data.map(function (trace, k) {
    const moved = Object.assign({}, trace);
    axes.forEach(function (axis) { if (first.data[k][axis] !== undefined) moved[axis] = first.data[k][axis]; });
    return moved;
  });

  Plotly.newPlot(map, { data: data, layout: layout, frames: frames,
                        config: { responsive: true, scrollZoom: true, displayModeBar: false } })
    .then(function () {
      show(current);
      map.on("plotly_buttonclicked", function (event) {
        const what = event && event.button && event.button.args && event.button.args[0];
        if (what === "play") play();
        else if (what === "pause") pause();
      });
      map.on("plotly_animatingframe", function (event) {
        const i = epochs.indexOf(event && event.name);
        if (i >= 0) show(i);
      });
      map.on("plotly_animated", function () { document.body.dataset.playing = "0"; });
      map.on("plotly_sliderchange", function (event) {
        const i = epochs.indexOf(String(event && event.step && event.step.args && event.step.args[0][0]));
        if (i >= 0) show(i);
      });
      map.on("plotly_hover", function (event) {
        const i = pointOf(event);
        if (i !== null) showHover(i);
      });
      map.on("plotly_unhover", function () { hoverPanel.style.opacity = "0.55"; });
      document.body.dataset.ready = "1";
    });
})();
