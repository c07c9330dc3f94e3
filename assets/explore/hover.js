// Hover a point: its thumbnail, label and file name in the corner panel.
// Click a point: the image large, with its nearest neighbours in the model's embedding space.
// POINTS.thumbs holds one data URI per drawn point, sent once; customdata is the point's position in it.
(function () {
  const map = document.getElementById("map");
  const hoverPanel = document.getElementById("hover-panel");
  const hoverThumb = document.getElementById("hover-thumb");
  const pickPanel = document.getElementById("pick-panel");

  function pointOf(event) {
    const p = event && event.points && event.points[0];
    if (!p) return null;
    const i = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
    return Number.isInteger(i) && i >= 0 && i < POINTS.thumbs.length ? i : null;
  }

  function describe(i) {
    return { label: POINTS.classWord + " " + POINTS.labels[i], file: POINTS.names[i] + "  (#" + POINTS.index[i] + ")" };
  }

  function showHover(i) {
    const facts = describe(i);
    hoverThumb.src = POINTS.thumbs[i];
    hoverThumb.alt = facts.label;
    document.getElementById("hover-label").textContent = facts.label;
    document.getElementById("hover-file").textContent = facts.file;
    hoverPanel.style.display = "block";
    hoverPanel.style.opacity = "1";
    hoverPanel.dataset.point = String(i);
  }

  function showPick(i) {
    const facts = describe(i);
    document.getElementById("pick-thumb").src = POINTS.thumbs[i];
    document.getElementById("pick-label").textContent = facts.label;
    document.getElementById("pick-file").textContent = facts.file;
    const box = document.getElementById("pick-neighbours");
    box.textContent = "";
    const near = POINTS.neighbours[i] || [];
    near.forEach(function (j, k) {
      const cell = document.createElement("div");
      cell.className = "neighbour";
      const img = document.createElement("img");
      img.src = POINTS.thumbs[j];
      img.alt = POINTS.labels[j];
      img.title = POINTS.names[j];
      img.addEventListener("click", function () { showPick(j); });
      const text = document.createElement("div");
      text.textContent = POINTS.labels[j] + " \u00b7 " + POINTS.distances[i][k].toFixed(3);
      cell.appendChild(img);
      cell.appendChild(text);
      box.appendChild(cell);
    });
    if (!near.length) box.textContent = "(not computed for this map)";
    pickPanel.style.display = "block";
    pickPanel.dataset.point = String(i);
  }

  document.getElementById("close-pick").addEventListener("click", function () { pickPanel.style.display = "none"; });

  Plotly.newPlot(map, FIGURE.data, FIGURE.layout, { responsive: true, displaylogo: false, scrollZoom: true })
    .then(function () {
      let hovered = null;
      let pressed = null;
      map.on("plotly_hover", function (event) {
        const i = pointOf(event);
        if (i !== null) { hovered = i; showHover(i); }
      });
      // Keep the last thumbnail (dimmed) when the mouse leaves a point: less flicker while moving.
      map.on("plotly_unhover", function () { hovered = null; hoverPanel.style.opacity = "0.55"; });
      map.on("plotly_click", function (event) { const i = pointOf(event); if (i !== null) showPick(i); });
      // In 3D plotly only reports a click when the scene redraws while the button is down, which a
      // still click often does not cause: a press and release on a hovered point, not a drag, is a click.
      map.addEventListener("pointerdown", function (e) { pressed = { x: e.clientX, y: e.clientY, point: hovered }; }, true);
      map.addEventListener("pointerup", function (e) {
        if (pressed && pressed.point !== null && Math.hypot(e.clientX - pressed.x, e.clientY - pressed.y) < 5) {
          showPick(pressed.point);
        }
        pressed = null;
      }, true);
      document.body.dataset.ready = "1";
    });
})();
