// Draws the overview's trend charts (Chart.js) from the JSON the page carries.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("trend-data");
  if (!source || typeof Chart === "undefined") return;
  const t = JSON.parse(source.textContent);
  const opts = (extra) => Object.assign({ responsive: true, maintainAspectRatio: false,
    animation: false, plugins: { legend: { position: "bottom" } } }, extra || {});
  new Chart(document.getElementById("chart-orders"), {
    type: "bar",
    data: { labels: t.days, datasets: [
      { label: "routed", data: t.routed, backgroundColor: "#1a6b34", stack: "s" },
      { label: "backordered", data: t.backordered, backgroundColor: "#c77c02", stack: "s" },
      { label: "orders", data: t.orders, type: "line", borderColor: "#0b5cad", backgroundColor: "#0b5cad" },
    ] },
    options: opts({ scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
  });
  new Chart(document.getElementById("chart-split"), {
    type: "line",
    data: { labels: t.days, datasets: [{ label: "split-shipment rate",
      data: t.split_rate.map((v) => (v === null ? null : v * 100)), borderColor: "#6f42c1",
      backgroundColor: "#6f42c1", spanGaps: true }] },
    options: opts({ scales: { y: { beginAtZero: true, ticks: { callback: (v) => v + "%" } } } }),
  });
  new Chart(document.getElementById("chart-cost"), {
    type: "line",
    data: { labels: t.days, datasets: [{ label: "cost per order",
      data: t.cost_per_order.map((v) => (v === null ? null : Number(v))), borderColor: "#a4161a",
      backgroundColor: "#a4161a", spanGaps: true }] },
    options: opts({ scales: { y: { beginAtZero: true } } }),
  });
});
