// Draws the overview's two 30-day charts from the JSON the server put in the page.
(function () {
  function draw() {
    if (typeof Chart === "undefined") return; // the figures table still shows everything
    var data = JSON.parse(document.getElementById("chart-data").textContent);
    var labels = JSON.parse(document.getElementById("chart-labels").textContent);
    var days = data.days.map(function (d) { return d.slice(5); });
    function line(metric, scale) {
      return {
        label: labels[metric],
        data: data.series[metric].map(function (v) { return scale ? v / scale : v; }),
        tension: 0.2,
      };
    }
    new Chart(document.getElementById("chart-counts"), {
      type: "line",
      data: { labels: days, datasets: [line("clicks"), line("bindings"), line("orders")] },
      options: { animation: false, maintainAspectRatio: false },
    });
    // Fen to yuan for display only: the figures themselves stay integer fen.
    new Chart(document.getElementById("chart-money"), {
      type: "bar",
      data: { labels: days, datasets: [line("gmv_fen", 100), line("commission_fen", 100)] },
      options: { animation: false, maintainAspectRatio: false },
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
